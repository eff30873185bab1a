// Builds the builtin filter chain from the configuration: authentication (api-key / JWT) first,
// so that rate limits keyed by consumer or subject see who the caller is, then rate limits.
// Called once at start-up; the factories are immutable and create one Filter per worker.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ringway/config/config.h"
#include "ringway/filter/filter.h"

namespace ringway::filter {

// Appends the factories the config asks for, in chain order. False with a message on a
// configuration that cannot be built (unreadable key file, bad JWKS, ...).
bool build_builtin_filters(const config::Config& cfg,
                           std::vector<std::unique_ptr<FilterFactory>>& out, std::string& error);

}  // namespace ringway::filter
