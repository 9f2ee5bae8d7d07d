"""trnbench's tests: unit/ (no worker process, no server), e2e/ (runs, servers, Ray), support/ (helpers)."""
