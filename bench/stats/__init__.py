"""The statistics: one implementation of each estimator and interval, used by every layer.

No torch and no trnbench module above `bench.errors`: the worker's stopping rule, the
orchestrator's row and `compare` all read the same functions.

- `quantile`: order-statistic intervals of a quantile, exact bootstrap replicates of one;
- `summary`: latency percentiles, throughput over the steady window, how much rounds differ;
- `stability`: the thresholds that make a cell `unstable`, in words;
- `stop`: the stopping rule of a measurement;
- `intervals`: intervals over groups of requests (rounds, runs), paired and Welch's;
- `bootstrap`: the design effect of requests correlated in time;
- `significance`: Welch's and Mann-Whitney's tests, Holm's correction;
- `accuracy`: an output against its reference, within its precision's tolerance.
"""
