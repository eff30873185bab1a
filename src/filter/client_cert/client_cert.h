// The client-certificate header filter (issue 13, mTLS): forwards the subject of the client
// certificate the TLS handshake verified in one request header, and removes every client-sent
// copy of that header on every request, so an upstream can trust it. Runs first in the chain.
// The factory is immutable and shared; each worker's filter holds only a view of its name.
#pragma once

#include <memory>
#include <string>

#include "ringway/filter/filter.h"

namespace ringway::filter::client_cert {

class ClientCertFilterFactory final : public FilterFactory {
 public:
  explicit ClientCertFilterFactory(std::string header) : header_(std::move(header)) {}
  std::unique_ptr<Filter> create(unsigned worker_index, unsigned worker_count) const override;
  const std::string& header() const { return header_; }

 private:
  std::string header_;  // a token (checked by the config)
};

}  // namespace ringway::filter::client_cert
