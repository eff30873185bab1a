// Process start-up and shutdown: builds the shared immutable state (router with its aggregate
// endpoints, upstream clusters, filters, metrics registry), starts one pinned Worker thread per core, and turns SIGTERM/SIGINT into a graceful
// drain. Called once from main().
#pragma once

#include "ringway/config/config.h"

namespace ringway::server {

// Runs the gateway until a shutdown signal and a completed drain. Returns the process exit code.
int run(const config::Config& cfg);

}  // namespace ringway::server
