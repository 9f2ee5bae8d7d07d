"""Every column of a result row, declared once: its kind, unit, which direction is better, how
it pools over a cell's rounds, and what it means.

The schema (`bench.results.schema.COLUMNS`), the typed export (`bench.results.table`), the
rounds' pooling (`bench.execute.rounds.combine`), the formatters and the generated docs page
(`docs/reference/results.md`, `python -m bench.results.schema`) all read these declarations.

Kinds: `text`, `count` (an integer), `flag` (true/false), `number` (a float); the `key`
group is the cell key (two rows compare when their keys match). Pooling over rounds:
- `requests`: recomputed from every round's requests together (percentiles, spread);
- `rounds`: an interval or figure over the rounds' own values (bench.stats.intervals);
- `sum`, `max` (the worst round), `mean`, `first` (the first round's: compile, load, the
  accuracy check, paid once), `last` (the last round's: settings and facts that do not move).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("text", "count", "flag", "number")
POOLS = ("requests", "rounds", "sum", "max", "mean", "first", "last")


@dataclass(frozen=True)
class Metric:
    """One column of the row."""

    name: str
    kind: str
    doc: str
    unit: str = ""  # in the name already where it has one (`_ms`, `_s`, `_qps`); here for readers
    better: str | None = None  # "lower" | "higher" | None (not a figure of merit)
    pool: str = "last"
    group: str = ""

    @property
    def key(self) -> bool:
        """Part of the cell key."""
        return self.group == "key"

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.pool not in POOLS or self.better not in (None, "lower", "higher"):
            raise ValueError(f"bad declaration of {self.name}")


GROUPS: list[tuple[str, str]] = []  # (group, what it holds), in display order
DECLARED: list[Metric] = []


def _group(name: str, about: str, *metrics: tuple) -> None:
    """Declare a group of columns: each (name, kind, doc[, unit[, better[, pool]]])."""
    GROUPS.append((name, about))
    for m in metrics:
        fields = dict(zip(("name", "kind", "doc", "unit", "better", "pool"), m))
        DECLARED.append(Metric(**fields, group=name))


LAT = ("ms", "lower", "requests")
_group("identity", "which cell of which run",
       ("run_id", "text", "the run directory's name: start time and a random suffix"),
       ("cell_id", "text", "a hash of the cell key (with `@TYPE` when placed on an instance type with --on)"))
_group("key", "the cell key: two rows are comparable when these match (owned by bench.plan.cell.Cell)",
       ("model", "text", "model card name, `user:NAME`, or the served model's name on -t endpoint"),
       ("weights", "text", "random (seeded), pretrained, or a local directory"),
       ("target", "text", "cpu, cuda, neuron, endpoint, or a plug-in"),
       ("compiler", "text", "how the target runs the model (eager, jit, inductor, trace, native-compile, ...; the API on endpoint)"),
       ("dtype", "text", "fp32, bf16, fp16 (served on endpoint)"),
       ("compiler_args", "text", "extra compiler flags, space-separated"),
       ("scenario", "text", "latency, throughput, server, generate, or a plug-in"),
       ("batch_size", "count", "inputs per request"),
       ("seq_len", "count", "tokens per input (token models)"),
       ("image_size", "count", "pixels per side (vision models)"),
       ("n_models", "count", "model copies (worker processes; client processes on endpoint)"),
       ("workers_per_model", "count", "requests in flight per copy (the concurrency on endpoint)"),
       ("threads_per_worker", "count", "CPU threads of each copy"),
       ("rate_qps", "number", "server: offered load", "queries/s"),
       ("p99_bound_ms", "number", "server: the p99 latency bound of a max-rate search", "ms"),
       ("burstiness", "number", "server: gamma shape of the arrivals (1 = Poisson)"),
       ("output_len", "count", "generate, endpoint: new tokens asked per request"),
       ("grad_accum", "count", "train: micro-batches per optimizer step"),
       ("optimizer", "text", "train: adamw or sgd"),
       ("precision", "text", "train: fp32, amp-bf16 (bf16 autocast, fp32 master weights), bf16 (pure) or auto-cast (the Neuron compiler's)"),
       ("dp", "count", "train: data-parallel ranks (torch's elastic launcher)"),
       ("slo", "text", "endpoint: the bounds a good request meets, e.g. tpot=50ms,ttft=500ms"),
       ("dataset", "text", "endpoint: the prompt dataset's file name"))
_group("status", "what became of the cell",
       ("status", "text", "ok, failed, inaccurate, unstable or skipped"),
       ("error", "text", "why, in words, when not ok"),
       ("stability", "text", "why the figure is shaky, in words ('' when steady)"),
       ("error_detail", "text", "the worker's traceback or the Ray failure, for a failed cell"))
_group("latency", "per-request latency in ms, percentiles over every measured request",
       ("samples", "count", "requests measured (warm-up excluded)", "", None, "sum"),
       ("warmup_samples", "count", "requests issued during the warm-up (recorded, not counted)", "", None, "sum"),
       ("duration_s", "number", "measured time", "s", None, "sum"),
       ("latency_ms_p0", "number", "fastest request", *LAT),
       ("latency_ms_p50", "number", "median request", *LAT),
       ("latency_ms_p90", "number", "90th percentile", *LAT),
       ("latency_ms_p95", "number", "95th percentile", *LAT),
       ("latency_ms_p99", "number", "99th percentile", *LAT),
       ("latency_ms_p99_9", "number", "99.9th percentile", *LAT),
       ("latency_ms_p100", "number", "slowest request", *LAT),
       ("latency_ms_mean", "number", "mean request", *LAT),
       ("latency_ms_std", "number", "standard deviation", "ms", None, "requests"),
       ("latency_ms_p50_ci_low", "number", "95 % CI of p50, low end (over rounds when there are 3 or more)", "ms", None, "rounds"),
       ("latency_ms_p50_ci_high", "number", "95 % CI of p50, high end", "ms", None, "rounds"),
       ("latency_ms_p99_ci_low", "number", "95 % CI of p99, low end (over groups of >= 100 requests)", "ms", None, "rounds"),
       ("latency_ms_p99_ci_high", "number", "95 % CI of p99, high end", "ms", None, "rounds"),
       ("latency_cv", "number", "coefficient of variation of the requests", "", None, "requests"),
       ("latency_iqr_ratio", "number", "interquartile range / median", "", None, "requests"),
       ("page_faults_per_request", "number", "minor page faults of the measuring processes per request", "", "lower", "mean"))
_group("throughput", "samples (inputs) per second",
       ("throughput_avg", "number", "samples/s over the steady window (every round's, weighted by its window)",
        "samples/s", "higher", "rounds"),
       ("throughput_peak", "number", "the best sub-window's rate", "samples/s", "higher", "max"),
       ("steady_window_s", "number", "the measured span with trim_s cut from each end", "s", None, "sum"),
       ("throughput_cv", "number", "CV of the rate between sub-windows", "", None, "mean"),
       ("throughput_ci_low", "number", "95 % CI of the rate over the rounds, low end", "samples/s", None, "rounds"),
       ("throughput_ci_high", "number", "95 % CI of the rate over the rounds, high end", "samples/s", None, "rounds"))
_group("machine", "the machine's own state while the cell was measured (bench.execute.hoststate)",
       ("foreign_cpu_frac", "number", "CPU other processes used, as a share of the host (the worst round)", "", None, "max"),
       ("cpu_steal_frac", "number", "CPU time the hypervisor stole (the worst round)", "", None, "max"),
       ("load_avg_1m", "number", "1-minute load average (the worst round)", "", None, "max"),
       ("host_cpus", "count", "CPUs of the host"),
       ("host_busy", "text", "'host busy: ...' when other processes used the host during a round"),
       ("busy_retries", "count", "rounds measured again because the host was busy", "", None, "sum"))
_group("rounds", "a cell measured in windows spread over the run (bench.execute.rounds)",
       ("rounds", "count", "rounds measured"),
       ("latency_ms_p50_rounds", "text", "each round's p50 (JSON list)", "ms", None, "rounds"),
       ("throughput_rounds", "text", "each round's rate (JSON list)", "samples/s", None, "rounds"),
       ("round_spread", "number", "(max - min) / median of the rounds, the extreme tenth of 10 or more left out",
        "", None, "rounds"))
_group("control", "run --control MODEL: the control's windows measured beside the cell's",
       ("control_model", "text", "the control model"),
       ("control_cell_id", "text", "the control's cell measured beside this one"),
       ("control_note", "text", "why the control's windows are missing, when they are"),
       ("control_latency_ms_p50", "number", "the control's p50 beside this cell", "ms", None, "requests"),
       ("control_throughput_avg", "number", "the control's rate beside this cell", "samples/s", None, "rounds"),
       ("control_latency_ms_p50_rounds", "text", "the control's p50 in each round (JSON list)", "ms", None, "rounds"),
       ("control_throughput_rounds", "text", "the control's rate in each round (JSON list)", "samples/s", None, "rounds"),
       ("vs_control_p50", "number", "this cell's p50 / the control's, paired round by round", "", "lower", "rounds"),
       ("vs_control_p50_ci_low", "number", "95 % CI of vs_control_p50, low end", "", None, "rounds"),
       ("vs_control_p50_ci_high", "number", "95 % CI of vs_control_p50, high end", "", None, "rounds"),
       ("vs_control_throughput", "number", "this cell's rate / the control's", "", "higher", "rounds"),
       ("vs_control_throughput_ci_low", "number", "95 % CI of vs_control_throughput, low end", "", None, "rounds"),
       ("vs_control_throughput_ci_high", "number", "95 % CI of vs_control_throughput, high end", "", None, "rounds"))
_group("server", "open-loop arrivals: rates in queries/s, MLPerf-style verdict, max-rate search",
       ("offered_rate_qps", "number", "the rate asked for", "queries/s"),
       ("scheduled_rate_qps", "number", "the rate of the seeded schedule", "queries/s"),
       ("achieved_rate_qps", "number", "the rate served", "queries/s", "higher"),
       ("requests_unserved", "count", "scheduled requests not served by the end"),
       ("queue_ms_p50", "number", "time from the scheduled send to the start of service, p50", "ms", "lower"),
       ("queue_ms_p99", "number", "the same, p99", "ms", "lower"),
       ("service_ms_p50", "number", "service time, p50", "ms", "lower"),
       ("service_ms_p99", "number", "service time, p99", "ms", "lower"),
       ("sched_lag_ms_p99", "number", "how late requests were sent against their schedule, p99", "ms", "lower"),
       ("validity", "text", "VALID or INVALID"),
       ("validity_reason", "text", "why INVALID"),
       ("search_role", "text", "probe or result of a max-rate search"),
       ("search_of", "text", "a probe's search (the result's cell_id)"),
       ("max_rate_qps", "number", "the highest VALID rate found", "queries/s", "higher"),
       ("capacity_qps", "number", "the closed-loop capacity the search started from", "queries/s"),
       ("search_probes", "count", "probes of the search"),
       ("rates_tried", "text", "every probe's rate and verdict (JSON)"))
_group("generate", "LLM decoding with vLLM's definitions (generate and endpoint rows)",
       ("input_len", "count", "prompt tokens asked for"),
       *[(f"{m}_ms_{s}", "number", f"{what}, {s}", "ms", "lower", "requests")
         for m, what in (("ttft", "time to first token"), ("tpot", "time per output token after the first"),
                         ("itl", "inter-token latency"), ("e2e", "request latency"))
         for s in ("p50", "p90", "p99", "mean")],
       ("output_tokens", "number", "output tokens in the measured window", "", None, "sum"),
       ("output_tokens_per_s", "number", "output tokens per second", "tokens/s", "higher", "rounds"),
       ("requests_per_s", "number", "requests completed per second", "requests/s", "higher", "rounds"))
_group("endpoint", "an OpenAI-compatible server over HTTP (bench.targets.endpoint)",
       ("endpoint_url", "text", "the base URL (credentials removed)"),
       ("endpoint_launch", "text", "the command that started the server, when trnbench did"),
       ("endpoint_slo", "text", "the SLOs, as given"),
       ("endpoint_tokenizer", "text", "--tokenizer, as given"),
       ("prompt_tokenizer", "text", "what built the prompts: a local tokenizer, or the server's /tokenize"),
       ("endpoint_dataset", "text", "--dataset, as given"),
       ("server_models", "text", "the models the server lists"),
       ("server_version", "text", "the server's version (vLLM's /version)"),
       ("vllm_neuron_version", "text", "the vllm-neuron plugin's version, where the server lists its packages "
        "(vLLM's /server_info, VLLM_SERVER_DEV_MODE=1)"),
       ("libtorch_neuronx_lite_version", "text", "libtorch-neuronx-lite's version, where the server lists it"),
       ("endpoint_replicas", "count", "--url A,B,...: the data-parallel replicas sent to round-robin"),
       ("replicas", "count", "replicas the cell's requests went to (2 or more)"),
       ("replica_requests", "text", "JSON: measured requests sent to each replica, in --url's order", "", None, "sum"),
       ("replica_completed", "text", "JSON: of those, the completed ones", "", None, "sum"),
       ("server_start_s", "number", "--launch: launch to the first healthy answer (vLLM Neuron: compile + load)",
        "s", "lower"),
       ("server_compile_cache", "text", "--launch: vLLM Neuron's compile cache before and after the launch "
        "($VLLM_CACHE_ROOT/neuron/compile_cache): warm, or cold with the entries it gained"),
       *[(f"ttft_content_ms_{s}", "number", f"reasoning models: time to the first answer (content) token, {s}",
          "ms", "lower", "requests") for s in ("p50", "p90", "p99", "mean")],
       ("reasoning_requests", "count", "requests that streamed reasoning (reasoning or reasoning_content)", "", None,
        "sum"),
       ("reasoning_chunks_mean", "number", "reasoning chunks per request", "", None, "mean"),
       ("reasoning_tokens_mean", "number", "reasoning tokens per request, from usage.completion_tokens_details",
        "", None, "mean"),
       ("server_header", "text", "the server's HTTP Server header"),
       ("output_forcing", "text", "what the server honoured to force the output length"),
       ("output_forcing_note", "text", "what it refused"),
       ("input_tokens", "number", "prompt tokens per request as sent (the nearest reachable length)"),
       ("requests_failed", "count", "requests that failed", "", "lower", "sum"),
       ("request_error", "text", "the first failed request's error"),
       ("requests_completed", "count", "requests completed before the server stopped answering"),
       ("goodput_rps", "number", "requests/s that met every SLO", "requests/s", "higher"),
       ("slo_attainment", "number", "share of requests that met every SLO", "", "higher"),
       ("client_loop_lag_ms_p99", "number", "how late the client's event loop woke, p99", "ms", "lower"),
       ("output_tokens_stream_mean", "number", "output tokens per request counted from the stream"),
       ("output_tokens_usage_mean", "number", "output tokens per request from usage"),
       ("token_count_mismatches", "count", "requests whose stream and usage counts differ"),
       ("token_count_note", "text", "what the counts mean for ITL and TPOT"),
       ("requests_short", "count", "requests that came back shorter than asked"),
       ("output_len_achieved_mean", "number", "output tokens per request achieved"),
       *[(f"server_{m}_ms_mean", "number", f"the server's own {what} (Prometheus /metrics)", "ms", "lower")
         for m, what in (("ttft", "time to first token"), ("itl", "inter-token latency"),
                         ("e2e", "request latency"), ("queue", "queue time"))],
       ("server_preemptions", "number", "the server's preemptions during the cell"),
       ("server_kv_cache_usage", "number", "the server's KV-cache usage at the end"),
       ("server_requests_waiting", "number", "requests waiting at the server at the end"),
       ("server_cpu_s", "number", "CPU time of a server on this host during the cell", "s"))
STEP = ("ms", "lower", "requests")
_group("train", "training steps: one step is zero grads, grad_accum x (forward with labels, backward), optimizer step (bench.targets.train)",
       ("step_ms_p50", "number", "median optimizer step (latency_ms_* hold the same steps)", *STEP),
       ("step_ms_p90", "number", "90th percentile step", *STEP),
       ("step_ms_p99", "number", "99th percentile step", *STEP),
       ("step_timing", "text", "how steps were timed: host cadence, or CUDA events (no sync between steps)"),
       ("global_batch", "count", "samples per optimizer step: batch_size x grad_accum x dp"),
       ("samples_per_s", "number", "samples per second over a window synced at both ends, all ranks", "samples/s", "higher", "rounds"),
       ("samples_per_s_per_rank", "text", "each rank's samples/s (JSON list; dp > 1)", "samples/s"),
       ("tokens_per_s", "number", "samples_per_s x seq_len (token models)", "tokens/s", "higher", "rounds"),
       ("tokens_per_s_per_device", "number", "tokens_per_s / dp", "tokens/s", "higher", "rounds"),
       ("host_gap_us_mean", "number", "host time between one step's end and the next one's start, mean", "us", "lower", "mean"),
       ("recompiles", "count", "graphs compiled inside the measured window (dynamo, TorchNeuron or torch_xla's metrics)", "", "lower", "sum"),
       ("train_steps", "count", "optimizer steps measured", "", None, "sum"),
       ("warmup_steps", "count", "steps before the window (the first creates the optimizer's state)", "", None, "sum"),
       ("loss_first", "number", "step 0's loss", "", None, "first"),
       ("loss_last", "number", "the last measured step's loss"),
       ("grad_norm", "number", "the gradients' L2 norm after the last step"),
       ("ref_loss_first", "number", "step 0's loss of eager fp32 on CPU, same weights and batch", "", None, "first"),
       ("ref_loss_moved", "number", "the reference's loss change over the numerics check's steps", "", None, "first"),
       ("loss_moved", "number", "this target's loss change over the same steps", "", None, "first"),
       ("peak_mem_allocated_mib", "number", "peak device memory held by tensors", "MiB", "lower", "max"),
       ("peak_mem_reserved_mib", "number", "peak device memory reserved by the allocator", "MiB", "lower", "max"),
       ("peak_rss_mib", "number", "cpu: the worker's peak resident memory", "MiB", "lower", "max"),
       ("flops_per_step", "number", "FLOPs of one optimizer step on one rank (torch.utils.flop_counter.FlopCounterMode)", "FLOP", None, "first"),
       ("flops_analytic_per_step", "number", "the same by flops_formula", "FLOP", None, "first"),
       ("flops_formula", "text", "the analytic formula used", "", None, "first"),
       ("tflops_achieved", "number", "flops_per_step x steps/s x dp / 1e12", "TFLOP/s", "higher", "rounds"),
       ("peak_tflops", "number", "the devices' dense peak for this precision (bench.targets.peaks), all ranks", "TFLOP/s"),
       ("peak_source", "text", "where the peak comes from"),
       ("mfu_pct", "number", "tflops_achieved / peak_tflops (empty where no peak is known)", "%", "higher", "rounds"),
       ("scaling_efficiency", "number", "samples/s at dp N / (N x samples/s at dp 1), both in the run", "", "higher"))
_group("cost", "dollars, when a price is known (bench.results.prices)",
       ("cost_per_1m_inf", "number", "1e6 / throughput_avg x hourly price / 3600", "$", "lower"),
       ("cost_per_1m_tokens", "number", "the same per million output tokens", "$", "lower"),
       ("price_per_hour", "number", "the instance's hourly price", "$"),
       ("price_kind", "text", "given, or the table's kind (RI-effective)"),
       ("price_source", "text", "where the price came from"))
_group("preparation", "build, compile, load and the accuracy check (paid once: the first round's)",
       ("compile_s", "number", "compile time (0 on a cache hit)", "s", "lower", "first"),
       ("load_s", "number", "load time of the compiled artifact", "s", "lower", "first"),
       ("first_call_ms", "number", "the first call after load", "ms", "lower", "first"),
       ("build_s", "number", "building the model from its card", "s", None, "first"),
       ("worker_start_s", "number", "starting the worker process (its imports)", "s", None, "first"),
       ("cache_hit", "flag", "the compiled artifact came from the cache", "", None, "first"),
       ("artifact", "text", "the cached artifact's directory", "", None, "first"),
       ("max_abs_err", "number", "largest |output - reference|", "", None, "first"),
       ("cosine", "number", "cosine of output and reference", "", None, "first"),
       ("reference_source", "text", "seeds (seeds/<card>.npz) or computed (eager fp32 here)", "", None, "first"),
       ("model_fingerprint", "text", "SHA-1 of the weights", "", None, "first"))
_group("neuron", "the Neuron SDK: the compiler's auto-cast, and what neuron-monitor saw",
       ("effective_auto_cast", "text", "the auto-cast the compiler applied", "", None, "first"),
       ("neuronx_cc_default_auto_cast", "text", "neuronx-cc's default for this version"),
       ("device_latency_ms_p50", "number", "the device's own execution time, p50", "ms", "lower"),
       ("device_latency_ms_p99", "number", "the same, p99", "ms", "lower"),
       ("runtime_latency_ms_p50", "number", "the runtime's latency, p50", "ms", "lower"),
       ("runtime_latency_ms_p99", "number", "the same, p99", "ms", "lower"),
       ("host_overhead_ms_p50", "number", "latency_ms_p50 - device_latency_ms_p50: what the host adds", "ms", "lower"),
       ("host_in_call_ms_p50", "number", "call_ms_p50 - device_latency_ms_p50: the host's part of the call "
        "(runtime, copies in and out)", "ms", "lower"),
       ("host_overhead_note", "text", "host_overhead_ms_p50 in words: inside the call, in the sync, before it"),
       ("device_executions", "count", "executions neuron-monitor counted"),
       ("neuron_errors", "count", "hardware or numerical errors the device reported"),
       ("neuroncore_util_pct", "number", "NeuronCore utilisation", "%"),
       ("neuron_device_mem_gib", "number", "device memory in use", "GiB"),
       ("neuron_ls_format", "text", "which neuron-ls JSON form answered"))
_group("time split", "where an inference request's time went, where the target syncs (bench.targets.infer)",
       ("call_ms_p50", "number", "the call itself: the host's dispatch (and the device's execution when the call "
        "returns only once it is done)", *LAT),
       ("call_ms_p99", "number", "the same, p99", *LAT),
       ("sync_ms_p50", "number", "the wait for the device after the call returned", *LAT),
       ("sync_ms_p99", "number", "the same, p99", *LAT))
_group("profile", "--profile: one untimed pass after the measurement (bench.targets.profiling)",
       ("profile_dir", "text", "the pass's files, relative to the run directory: profiles/<cell_id>"),
       ("profile_tool", "text", "what captured it: torch.profiler, the Neuron runtime, the server's profiler"),
       ("profile_top_ops", "text", "JSON: the 5 operators with the most self time, each with its share of the pass"),
       ("profile_summary", "text", "the top 3 operators and their shares, in words"),
       ("profile_ops_share", "number", "every operator's self time over the pass's wall time (the rest: Python and "
        "the framework between operators, and the profiler)"),
       ("profile_step_ms", "number", "a request (step) under the profiler: not a measurement", "ms"),
       ("profile_pass_s", "number", "what the pass cost the run, in wall time", "s"),
       ("profile_device_ms", "number", "Neuron: the device's execution time in the capture (neuron-explorer)", "ms"),
       ("profile_note", "text", "why a cell has no profile, or what its capture says"))
_group("settings", "how the cell was measured (bench.plan.cell.Measure)",
       ("warmup_s", "number", "warm-up seconds", "s"),
       ("min_duration_s", "number", "minimum measured seconds (the cell's total over its rounds)", "s"),
       ("max_duration_s", "number", "maximum measured seconds", "s"),
       ("min_samples", "count", "minimum measured requests"),
       ("target_ci", "number", "early stop once the p50 CI is within +- this fraction"),
       ("trim_s", "number", "seconds trimmed from each end of a throughput window", "s"),
       ("fresh_process_per_round", "flag", "every round in new worker processes"),
       ("keep_freed_memory", "flag", "glibc malloc kept freed memory in the workers"))
_group("environment", "the host and software (bench.results.env)",
       ("instance_type", "text", "from the DMI product name, or --instance-type"),
       ("hostname", "text", "the host's name"),
       ("cpu_model", "text", "the CPU"),
       ("cpu_count", "count", "CPUs"),
       ("memory_gib", "number", "memory", "GiB"),
       ("os", "text", "the operating system"),
       ("accelerator", "text", "the accelerator kind"),
       ("device_name", "text", "the device"),
       ("torch_threads", "count", "torch's intra-op threads in the worker"),
       ("python", "text", "Python version"),
       ("torch", "text", "torch version"),
       ("transformers", "text", "transformers version"),
       ("torch_neuronx", "text", "torch-neuronx version"),
       ("neuronx_cc", "text", "neuronx-cc version"),
       ("harness_version", "text", "trnbench version"),
       ("git_commit", "text", "trnbench's commit"),
       ("git_dirty", "flag", "uncommitted changes in trnbench's checkout"),
       ("target_notes", "text", "why -t auto or the default compiler chose as it did"),
       ("on_instance", "text", "--on: the instance type a Ray executor placed the cell on"),
       ("ray_node_id", "text", "the Ray node that measured the cell"),
       ("python_executable", "text", "ab --b-python: side B's interpreter"),
       ("timestamp", "number", "when the row was written (Unix time)", "s"),
       ("schema_version", "count", "the row's schema version (bench.results.schema.HISTORY)"))

BY_NAME = {m.name: m for m in DECLARED}


def declared(name: str) -> Metric | None:
    return BY_NAME.get(name)


def pooled_by(pool: str) -> tuple[str, ...]:
    """The columns that pool over rounds by `pool`."""
    return tuple(m.name for m in DECLARED if m.pool == pool)
