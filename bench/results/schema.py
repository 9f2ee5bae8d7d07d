"""The result row's contract: which columns it has, what they mean, which form its key.

One owner: every producer builds rows through `bench.execute.cell.build_row`, readers use
these names. Units are in the column names; names follow NeuronPerf's where they mean the
same (`throughput_avg`, `latency_ms_p50`, `n_models`, `workers_per_model`, `batch_size`).
"""

from __future__ import annotations

from bench.plan.cell import Cell

SCHEMA_VERSION = 1

KEY_COLUMNS = Cell.key_columns()  # owned by the Cell: a new key field is a new column
STATUSES = ("ok", "failed", "inaccurate", "unstable", "skipped")
# Documented columns, in display order (units in the name; throughput in samples/s).
COLUMNS = [
    "run_id", "cell_id", *KEY_COLUMNS, "status", "error",
    "samples", "warmup_samples", "duration_s", "steady_window_s", "throughput_avg", "throughput_peak",
    "latency_ms_p0", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_p99_9", "latency_ms_p100", "latency_ms_mean", "latency_ms_std",
    "latency_ms_p50_ci_low", "latency_ms_p50_ci_high", "latency_ms_p99_ci_low", "latency_ms_p99_ci_high",
    "latency_cv", "latency_iqr_ratio", "throughput_cv", "stability", "page_faults_per_request",
    # the machine's own state while the cell was measured (bench.execute.hoststate)
    "foreign_cpu_frac", "cpu_steal_frac", "load_avg_1m", "host_cpus", "host_busy", "busy_retries",
    # rounds (bench.execute.rounds): per-round figures and intervals over the rounds
    "rounds", "latency_ms_p50_rounds", "throughput_rounds", "round_spread", "throughput_ci_low",
    "throughput_ci_high",
    # run --control MODEL: the control's windows measured beside the cell's (bench.execute.rounds)
    "control_model", "control_cell_id", "control_note", "control_latency_ms_p50", "control_throughput_avg",
    "control_latency_ms_p50_rounds", "control_throughput_rounds", "vs_control_p50", "vs_control_p50_ci_low",
    "vs_control_p50_ci_high", "vs_control_throughput", "vs_control_throughput_ci_low",
    "vs_control_throughput_ci_high",
    # server (open loop): rates in queries/s, MLPerf-style verdict, max-rate search
    "offered_rate_qps", "scheduled_rate_qps", "achieved_rate_qps", "requests_unserved",
    "queue_ms_p50", "queue_ms_p99", "service_ms_p50", "service_ms_p99", "sched_lag_ms_p99",
    "validity", "validity_reason", "search_role", "search_of", "max_rate_qps", "capacity_qps",
    "search_probes", "rates_tried",
    # generate (LLM decoding, vLLM's definitions)
    "input_len", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "ttft_ms_mean",
    "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99", "tpot_ms_mean",
    "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "itl_ms_mean",
    "e2e_ms_p50", "e2e_ms_p90", "e2e_ms_p99", "e2e_ms_mean",
    "output_tokens", "output_tokens_per_s", "requests_per_s",
    # endpoint (an OpenAI-compatible server over HTTP; bench.scenarios.endpoint)
    "endpoint_url", "endpoint_launch", "endpoint_slo", "endpoint_tokenizer", "prompt_tokenizer", "endpoint_dataset",
    "server_models", "server_version", "output_forcing", "output_forcing_note", "input_tokens",
    "requests_failed", "request_error", "goodput_rps", "slo_attainment", "client_loop_lag_ms_p99",
    "output_tokens_stream_mean", "output_tokens_usage_mean", "token_count_mismatches", "requests_short",
    "output_len_achieved_mean", "server_ttft_ms_mean", "server_itl_ms_mean", "server_e2e_ms_mean",
    "server_queue_ms_mean", "server_preemptions", "server_kv_cache_usage", "server_requests_waiting", "server_cpu_s",
    "token_count_note", "server_header", "requests_completed",
    # cost (bench.results.prices): 1e6 / rate x hourly price / 3600, and where the price came from
    "cost_per_1m_inf", "cost_per_1m_tokens", "price_per_hour", "price_kind", "price_source",
    "compile_s", "load_s", "first_call_ms", "build_s", "worker_start_s", "cache_hit",
    "max_abs_err", "cosine", "reference_source", "model_fingerprint",
    # neuron: the compiler's auto-cast in effect, and what neuron-monitor saw during the cell
    "effective_auto_cast", "neuronx_cc_default_auto_cast", "device_latency_ms_p50", "device_latency_ms_p99",
    "runtime_latency_ms_p50", "runtime_latency_ms_p99", "host_overhead_ms_p50", "device_executions",
    "neuron_errors", "neuroncore_util_pct", "neuron_device_mem_gib", "neuron_ls_format",
    "warmup_s", "min_duration_s", "max_duration_s", "min_samples", "target_ci", "trim_s", "fresh_process_per_round",
    "keep_freed_memory", "instance_type", "hostname", "cpu_model", "cpu_count", "memory_gib", "os",
    "accelerator", "device_name", "torch_threads",
    "python", "torch", "transformers", "torch_neuronx", "neuronx_cc", "harness_version",
    "git_commit", "git_dirty", "target_notes", "timestamp", "schema_version",
]
