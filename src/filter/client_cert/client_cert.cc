// Removal first, then the verified value: the head writer drops removed names from the client's
// fields and writes added ones last, so the upstream sees exactly one copy, ours.
#include "filter/client_cert/client_cert.h"

namespace ringway::filter::client_cert {
namespace {

class ClientCertFilter final : public Filter {
 public:
  explicit ClientCertFilter(std::string_view header) : header_(header) {}

  Verdict on_request(RequestContext& ctx) override {
    bool ok = ctx.edits.push_remove(header_);
    // ctx.peer_subject lives as long as the connection's TLS session, longer than the exchange.
    if (!ctx.peer_subject.empty()) ok &= ctx.edits.push_add(header_, ctx.peer_subject);
    if (ok) return Verdict::kContinue;
    ctx.reply.status = 500;
    ctx.reply.detail = "too many header edits";
    ctx.reply.header_count = 0;
    return Verdict::kRespond;
  }

 private:
  std::string_view header_;  // the factory's, which outlives every worker's chain
};

}  // namespace

std::unique_ptr<Filter> ClientCertFilterFactory::create(unsigned, unsigned) const {
  return std::make_unique<ClientCertFilter>(header_);
}

}  // namespace ringway::filter::client_cert
