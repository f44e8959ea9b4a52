// The engine's abuse limits (net/guard.hpp): token buckets on a clock the test moves, the
// connection counters, trustProxy's reading of X-Forwarded-For and X-Real-IP (spoofing
// included), and the keys addresses are counted under.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "net/guard.hpp"

namespace {

using sidewire::LimitsOptions;
using sidewire::guard::Bucket;
using sidewire::guard::Buckets;
using sidewire::guard::Counter;
using sidewire::guard::ProxyTrust;
using sidewire::guard::Rate;
using Limits = sidewire::guard::Setup;  // not Setup: gtest's Test has one
using Headers = std::vector<std::pair<std::string, std::string>>;

TEST(Guard, BucketHoldsItsPointsAndRefillsContinuously) {
  const Rate r{3, 1000};  // 3 per second
  Bucket b;
  std::uint32_t retry = 0;
  EXPECT_TRUE(b.take(r, 0));
  EXPECT_TRUE(b.take(r, 0));
  EXPECT_TRUE(b.take(r, 0));
  EXPECT_FALSE(b.take(r, 0, &retry));
  EXPECT_EQ(retry, 334u);  // one token takes a third of a second
  EXPECT_FALSE(b.take(r, 300));
  EXPECT_TRUE(b.take(r, 334));
  EXPECT_FALSE(b.take(r, 340));
  // Long quiet refills it to its points, no further.
  EXPECT_TRUE(b.take(r, 100000));
  EXPECT_TRUE(b.take(r, 100000));
  EXPECT_TRUE(b.take(r, 100000));
  EXPECT_FALSE(b.take(r, 100000));
}

TEST(Guard, BucketSurvivesTheClockWrapping) {
  const Rate r{1, 1000};
  Bucket b;
  EXPECT_TRUE(b.take(r, 0xFFFFFF00u));
  EXPECT_FALSE(b.take(r, 0xFFFFFF80u));
  EXPECT_TRUE(b.take(r, 0x00000300u));  // 1024 ms later, across the wrap
}

LimitsOptions events(std::vector<LimitsOptions::EventRate> list, std::string policy = "error") {
  LimitsOptions o;
  o.enabled = true;
  o.events = std::move(list);
  o.policy = std::move(policy);
  return o;
}

TEST(Guard, RulesByNameThenStar) {
  const Limits s(events({{"message:new", 30, 60000}, {"*", 100, 10000}, {"call:initiate", 5, 60000}}));
  EXPECT_EQ(s.rule_for("message:new"), 0);
  EXPECT_EQ(s.rule_for("call:initiate"), 2);
  EXPECT_EQ(s.rule_for("anything"), 1);
  EXPECT_EQ(s.rule_for(""), 1);
  const Limits named(events({{"message:new", 30, 60000}}));
  EXPECT_EQ(named.rule_for("message:typing"), -1);  // no '*': not limited
}

TEST(Guard, VerdictsByPolicyTellOncePerBurst) {
  const Limits tell(events({{"*", 2, 1000}}));
  Buckets b;
  EXPECT_TRUE(b.check(tell, 0, 0).pass);
  EXPECT_TRUE(b.check(tell, 0, 0).pass);
  auto v = b.check(tell, 0, 0);
  EXPECT_FALSE(v.pass);
  EXPECT_TRUE(v.tell);
  EXPECT_FALSE(v.disconnect);
  EXPECT_EQ(v.retry_after_ms, 500u);
  EXPECT_FALSE(b.check(tell, 0, 10).tell);  // told already
  EXPECT_TRUE(b.check(tell, 0, 600).pass);  // passed: the next refusal is told again
  EXPECT_TRUE(b.check(tell, 0, 600).tell);

  const Limits cut(events({{"*", 1, 1000}}, "disconnect"));
  Buckets c;
  EXPECT_TRUE(c.check(cut, 0, 0).pass);
  v = c.check(cut, 0, 0);
  EXPECT_TRUE(v.disconnect);
  EXPECT_FALSE(v.tell);

  const Limits drop(events({{"*", 1, 1000}}, "drop"));
  Buckets d;
  EXPECT_TRUE(d.check(drop, 0, 0).pass);
  v = d.check(drop, 0, 0);
  EXPECT_FALSE(v.pass || v.tell || v.disconnect);
  EXPECT_TRUE(d.check(drop, -1, 0).pass);  // no rule
}

TEST(Guard, SetupRefusesWhatCannotWork) {
  EXPECT_THROW(Limits(events({}, "ban")), std::invalid_argument);
  EXPECT_THROW(Limits(events({{"a", 0, 1000}})), std::invalid_argument);
  EXPECT_THROW(Limits(events({{"a", 1, 0}})), std::invalid_argument);
  EXPECT_THROW(Limits(events({{"a", 1, 10}, {"a", 2, 10}})), std::invalid_argument);
  LimitsOptions o;
  o.trust_proxy = {"10.0.0.0/8", "not an address"};
  EXPECT_THROW(Limits{o}, std::invalid_argument);
}

TEST(Guard, CounterCapsAndRatesPerKey) {
  Counter c;
  EXPECT_EQ(c.admit("a", 2, {}, 0), Counter::Refusal::kNone);
  EXPECT_EQ(c.admit("a", 2, {}, 0), Counter::Refusal::kNone);
  EXPECT_EQ(c.admit("a", 2, {}, 0), Counter::Refusal::kTooMany);
  EXPECT_EQ(c.admit("b", 2, {}, 0), Counter::Refusal::kNone);
  c.release("a");
  EXPECT_EQ(c.open("a"), 1u);
  EXPECT_EQ(c.admit("a", 2, {}, 0), Counter::Refusal::kNone);
  c.release("nobody");  // nothing to release: no harm
  c.release("b");
  c.release("b");
  EXPECT_EQ(c.open("b"), 0u);

  Counter rate;
  const Rate r{2, 10000};
  std::uint32_t retry = 0;
  EXPECT_EQ(rate.admit("x", 0, r, 1000), Counter::Refusal::kNone);
  EXPECT_EQ(rate.admit("x", 0, r, 1000), Counter::Refusal::kNone);
  EXPECT_EQ(rate.admit("x", 0, r, 1000, &retry), Counter::Refusal::kTooFast);
  EXPECT_EQ(retry, 5000u);
  EXPECT_EQ(rate.admit("y", 0, r, 1000), Counter::Refusal::kNone);
  EXPECT_EQ(rate.admit("x", 0, r, 6000), Counter::Refusal::kNone);
}

TEST(Guard, CounterForgetsKeysWithNothingOpen) {
  Counter c;
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(c.admit(key, 1, {}, 0), Counter::Refusal::kNone);
    c.release(key);
  }
  EXPECT_EQ(c.admit("held", 1, {}, 0), Counter::Refusal::kNone);
  EXPECT_LT(c.keys(), 3000u);  // swept as it grew
  EXPECT_EQ(c.admit("later", 1, {}, 61000), Counter::Refusal::kNone);
  EXPECT_LE(c.keys(), 2u);
  EXPECT_EQ(c.open("held"), 1u);  // an open connection is never forgotten
}

TEST(Guard, AddressKeys) {
  using sidewire::guard::address_key;
  EXPECT_EQ(address_key("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(address_key("::ffff:203.0.113.7"), "203.0.113.7");
  // One IPv6 /64 is one client's.
  EXPECT_EQ(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
  EXPECT_NE(address_key("2001:db8:1:3::1"), address_key("2001:db8:1:2::1"));
  EXPECT_EQ(address_key("fe80::1%eth0"), "fe80::/64");
  EXPECT_EQ(address_key("not-an-ip"), "not-an-ip");
}

TEST(Guard, ProxyTrustNetworksAndNames) {
  ProxyTrust t;
  t.add("10.0.0.0/8");
  t.add("192.0.2.1");
  t.add("fd00::/8");
  t.add("loopback");
  EXPECT_TRUE(t.trusts("10.200.3.4"));
  EXPECT_FALSE(t.trusts("11.0.0.1"));
  EXPECT_TRUE(t.trusts("192.0.2.1"));
  EXPECT_FALSE(t.trusts("192.0.2.2"));
  EXPECT_TRUE(t.trusts("fd12::1"));
  EXPECT_FALSE(t.trusts("fe80::1"));
  EXPECT_TRUE(t.trusts("127.0.0.1"));
  EXPECT_TRUE(t.trusts("::1"));
  EXPECT_TRUE(t.trusts("::ffff:10.1.1.1"));  // a dual-stack socket's view of an IPv4 proxy
  EXPECT_FALSE(t.trusts(""));
  EXPECT_FALSE(t.trusts("garbage"));
  ProxyTrust none;
  EXPECT_FALSE(none.trusts("127.0.0.1"));
  EXPECT_THROW(t.add("10.0.0.0/33"), std::invalid_argument);
  EXPECT_THROW(t.add("10.0.0.0/"), std::invalid_argument);
  EXPECT_THROW(t.add("10.0.0.0/8x"), std::invalid_argument);
  EXPECT_THROW(t.add("example.com"), std::invalid_argument);
  EXPECT_THROW(t.add("::/129"), std::invalid_argument);
  ProxyTrust mapped;
  mapped.add("::ffff:10.0.0.0/104");
  EXPECT_TRUE(mapped.trusts("10.9.9.9"));
  EXPECT_FALSE(mapped.trusts("11.0.0.1"));
}

TEST(Guard, ClientAddressThroughTrustedProxiesOnly) {
  ProxyTrust t;
  t.add("10.0.0.0/8");
  t.add("loopback");
  const auto from = [&](const char* peer, Headers h) { return t.client_address(peer, h); };
  // An untrusted peer's headers are not read at all.
  EXPECT_EQ(from("203.0.113.5", {{"X-Forwarded-For", "198.51.100.1"}}), "203.0.113.5");
  EXPECT_EQ(from("203.0.113.5", {{"X-Real-IP", "198.51.100.1"}}), "203.0.113.5");
  // A trusted proxy: the rightmost hop that is not one of ours.
  EXPECT_EQ(from("10.0.0.2", {{"x-forwarded-for", "198.51.100.1"}}), "198.51.100.1");
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.0.0.9"}}), "198.51.100.1");
  // Several header lines are one list, in order.
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-For", "198.51.100.1"}}), "198.51.100.1");
  // Every hop trusted: the leftmost.
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "10.1.1.1, 10.2.2.2"}}), "10.1.1.1");
  // A hop that is no address ends the walk at the one before it: nothing past it is believed.
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "198.51.100.1, unknown, 10.0.0.3"}}), "10.0.0.3");
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "garbage"}}), "10.0.0.2");
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", ""}}), "10.0.0.2");
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", "198.51.100.1, "}}), "10.0.0.2");  // a trailing empty hop
  EXPECT_EQ(from("10.0.0.2", {{"X-Forwarded-For", ""}, {"X-Forwarded-For", "198.51.100.1"}}), "198.51.100.1");
  // X-Real-IP when there is no X-Forwarded-For.
  EXPECT_EQ(from("127.0.0.1", {{"X-Real-IP", " 2001:db8::7 "}}), "2001:db8::7");
  EXPECT_EQ(from("127.0.0.1", {{"X-Real-IP", "nope"}}), "127.0.0.1");
  EXPECT_EQ(from("::ffff:127.0.0.1", {{"X-Forwarded-For", "::ffff:198.51.100.4"}}), "198.51.100.4");
  EXPECT_EQ(from("::1", {}), "::1");
}

TEST(Guard, TicketsCountUntilTheyGo) {
  LimitsOptions o;
  o.enabled = true;
  o.connections_per_ip = 1;
  o.connections_per_user = 1;
  o.trust_proxy = {"loopback"};
  auto setup = std::make_shared<const Limits>(o);
  const Headers xff{{"X-Forwarded-For", "198.51.100.1"}};
  auto a = sidewire::guard::admit(setup, "127.0.0.1", xff);
  ASSERT_TRUE(a.ticket);
  EXPECT_EQ(a.ticket->address(), "198.51.100.1");
  auto b = sidewire::guard::admit(setup, "127.0.0.1", xff);
  EXPECT_FALSE(b.ticket);
  EXPECT_EQ(b.refusal, Counter::Refusal::kTooMany);
  EXPECT_NE(b.message.find("connectionsPerIp 1"), std::string::npos);
  EXPECT_TRUE(b.retry_after_header().empty());
  EXPECT_TRUE(sidewire::guard::admit(setup, "127.0.0.1", {{"X-Forwarded-For", "198.51.100.2"}}).ticket);
  EXPECT_TRUE(a.ticket->admit_user("ada"));
  EXPECT_TRUE(a.ticket->admit_user("ada"));  // once per ticket
  auto other = sidewire::guard::admit(setup, "127.0.0.1", {{"X-Forwarded-For", "198.51.100.3"}});
  EXPECT_FALSE(other.ticket->admit_user("ada"));
  a.ticket.reset();  // gone: its address and user count no more
  EXPECT_TRUE(other.ticket->admit_user("ada"));
  EXPECT_TRUE(sidewire::guard::admit(setup, "127.0.0.1", xff).ticket);

  LimitsOptions r;
  r.enabled = true;
  r.connect_rate_points = 1;
  r.connect_rate_period_ms = 5000;
  auto rated = std::make_shared<const Limits>(r);
  EXPECT_TRUE(sidewire::guard::admit(rated, "198.51.100.9", {}).ticket);
  auto refused = sidewire::guard::admit(rated, "198.51.100.9", {});
  EXPECT_EQ(refused.refusal, Counter::Refusal::kTooFast);
  const std::string h = refused.retry_after_header();
  EXPECT_EQ(h.rfind("Retry-After: ", 0), 0u);
  EXPECT_GE(std::stoi(h.substr(13)), 4);
  EXPECT_LE(std::stoi(h.substr(13)), 5);
}

}  // namespace
