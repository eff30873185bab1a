// How a lookup's answer lands on a re-resolved name's slots (upstream/dns.h), without sockets:
// Dns::apply is what the c-ares callback calls.
#include "ringway/upstream/dns.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringway/upstream/traffic.h"

namespace ringway::upstream {
namespace {

DnsAddress v4(const char* ip, uint16_t port = 80) {
  DnsAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.addr);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
  a.len = sizeof(sockaddr_in);
  a.text = std::string(ip) + ":" + std::to_string(port);
  return a;
}

struct Fixture {
  config::Config cfg;
  std::unique_ptr<Clusters> clusters;
  std::unique_ptr<Traffic> traffic;
  std::unique_ptr<Dns> dns;

  explicit Fixture(uint32_t slots) {
    cfg.routes.resize(1);
    for (uint32_t k = 0; k < slots; ++k) {
      config::Target t;
      t.authority = "svc.test:80";
      t.address.host = "svc.test";
      t.address.port = 80;
      t.dns = true;
      t.dns_slot = static_cast<uint8_t>(k);
      cfg.routes[0].targets.push_back(t);
    }
    cfg.routes[0].traffic.dns_refresh_ms = 1000;
    clusters = std::make_unique<Clusters>(cfg);
    traffic = std::make_unique<Traffic>(*clusters, TrafficOptions{});
    dns = std::make_unique<Dns>(*clusters, cfg, *traffic);
  }
  Dns::Name& name() { return const_cast<Dns::Name&>(dns->names().front()); }
  // Slot i's address text, or "-" when absent.
  std::string slot(uint32_t i) {
    if (traffic->host(i).present.load() == 0) return "-";
    return dns->address(i)->text;
  }
};

TEST(Dns, SlotsStartAbsentAndFillFromTheAnswer) {
  Fixture f(4);
  ASSERT_TRUE(f.dns->active());
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(f.slot(i), "-");
  f.dns->apply(f.name(), {v4("10.0.0.1"), v4("10.0.0.2")}, 1, nullptr);
  EXPECT_EQ(f.slot(0), "10.0.0.1:80");
  EXPECT_EQ(f.slot(1), "10.0.0.2:80");
  EXPECT_EQ(f.slot(2), "-");
  EXPECT_EQ(f.dns->lookups(), 1u);
}

TEST(Dns, AnAddressStillAnsweredKeepsItsSlotAndGeneration) {
  Fixture f(4);
  f.dns->apply(f.name(), {v4("10.0.0.1"), v4("10.0.0.2")}, 1, nullptr);
  const DnsAddress* kept = f.dns->address(1);
  f.dns->apply(f.name(), {v4("10.0.0.3"), v4("10.0.0.2")}, 1, nullptr);
  EXPECT_EQ(f.dns->address(1), kept);  // same pointer: its pooled connections stay
  EXPECT_EQ(f.slot(1), "10.0.0.2:80");
  EXPECT_EQ(f.slot(2), "10.0.0.3:80");  // new ones take empty slots first
  EXPECT_EQ(f.slot(0), "-");            // the gone one goes absent
}

TEST(Dns, OneSlotIsReplacedInPlaceWithANewGeneration) {
  Fixture f(1);
  f.dns->apply(f.name(), {v4("10.0.0.1")}, 1, nullptr);
  const DnsAddress* old = f.dns->address(0);
  f.dns->apply(f.name(), {v4("10.0.0.2")}, 1, nullptr);
  EXPECT_EQ(f.slot(0), "10.0.0.2:80");  // never absent in between
  EXPECT_NE(f.dns->address(0), old);    // pooled connections to the old address are closed
}

TEST(Dns, AFailedOrEmptyLookupKeepsTheLastGoodSet) {
  Fixture f(2);
  f.dns->apply(f.name(), {v4("10.0.0.1")}, 1, nullptr);
  f.dns->apply(f.name(), {}, 0, "Timeout");
  f.dns->apply(f.name(), {}, 0, "no addresses");
  EXPECT_EQ(f.slot(0), "10.0.0.1:80");
  EXPECT_EQ(f.dns->failures(), 2u);
  EXPECT_EQ(f.dns->lookups(), 3u);
}

TEST(Dns, MoreAddressesThanSlotsFillEverySlot) {
  Fixture f(2);
  f.dns->apply(f.name(), {v4("10.0.0.1"), v4("10.0.0.2"), v4("10.0.0.3")}, 1, nullptr);
  EXPECT_EQ(f.slot(0), "10.0.0.1:80");
  EXPECT_EQ(f.slot(1), "10.0.0.2:80");
}

TEST(Dns, AnAbsentSlotIsNeverPickedEvenInPanic) {
  Fixture f(4);
  f.dns->apply(f.name(), {v4("10.0.0.1")}, 1, nullptr);
  uint32_t cursor = 0;
  Rng rng(7);
  for (int k = 0; k < 50; ++k) {
    PickInput in;
    in.now_ns = 1;
    EXPECT_EQ(f.traffic->pick(f.clusters->route(0), in, cursor, rng), 0u);
  }
}

}  // namespace
}  // namespace ringway::upstream
