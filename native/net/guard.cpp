#include "net/guard.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "net/http_upgrade.hpp"

namespace sidewire::guard {

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// ---------------------------------------------------------------------------- buckets

bool Bucket::take(const Rate& rate, std::uint32_t now, std::uint32_t* retry_after_ms) {
  const double per_ms = static_cast<double>(rate.points) / rate.period_ms;
  double debt = debt_of(rate, now);
  at = now;
  if (debt + 1 > rate.points + 1e-6) {
    debt_store(debt);
    if (retry_after_ms) *retry_after_ms = static_cast<std::uint32_t>(std::ceil((debt + 1 - rate.points) / per_ms));
    return false;
  }
  debt_store(debt + 1);
  return true;
}

double Bucket::debt_of(const Rate& rate, std::uint32_t now) const {
  if (debt <= 0) return 0;
  const double refilled = static_cast<double>(static_cast<std::uint32_t>(now - at)) * rate.points / rate.period_ms;
  return std::max(0.0, static_cast<double>(debt) - refilled);
}

void Bucket::debt_store(double d) { debt = d; }

Verdict Buckets::check(const Setup& setup, int rule, std::uint32_t now_ms) {
  Verdict v;
  if (rule < 0) return v;
  v.rule = rule;
  if (!buckets_) buckets_ = std::make_unique<Bucket[]>(setup.rules.size());
  Bucket& b = buckets_[static_cast<std::size_t>(rule)];
  if (b.take(setup.rules[static_cast<std::size_t>(rule)].rate, now_ms, &v.retry_after_ms)) {
    b.told = false;
    return v;
  }
  v.pass = false;
  v.disconnect = setup.policy == Policy::kDisconnect;
  v.tell = setup.policy == Policy::kError && !b.told;
  b.told = true;
  return v;
}

// ---------------------------------------------------------------------------- addresses

namespace {

struct Parsed {
  bool v6 = false;
  std::uint8_t bytes[16] = {};
};

std::optional<Parsed> parse_address(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  // An IPv6 address with a zone (fe80::1%eth0): the zone says nothing about who it is.
  if (char* zone = std::strchr(buf, '%')) *zone = '\0';
  Parsed p;
  if (::inet_pton(AF_INET, buf, p.bytes) == 1) return p;
  if (::inet_pton(AF_INET6, buf, p.bytes) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(p.bytes, kMapped, 12) == 0) {  // ::ffff:a.b.c.d is a.b.c.d
      std::memmove(p.bytes, p.bytes + 12, 4);
      std::memset(p.bytes + 4, 0, 12);
      return p;
    }
    p.v6 = true;
    return p;
  }
  return std::nullopt;
}

std::string format(const Parsed& p) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.bytes, text, sizeof text);
  return text;
}

bool prefix_matches(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
  const unsigned whole = prefix / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::string canonical_address(std::string_view address) {
  const std::optional<Parsed> p = parse_address(address);
  return p ? format(*p) : std::string(address);
}

std::string address_key(std::string_view address) {
  std::optional<Parsed> p = parse_address(address);
  if (!p) return std::string(address);
  if (p->v6) std::memset(p->bytes + 8, 0, 8);
  std::string key = format(*p);
  if (p->v6) key += "/64";
  return key;
}

void ProxyTrust::add(std::string_view entry) {
  static const std::pair<const char*, std::vector<const char*>> kNamed[] = {
      {"loopback", {"127.0.0.0/8", "::1/128"}},
      {"linklocal", {"169.254.0.0/16", "fe80::/10"}},
      {"uniquelocal", {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}},
  };
  for (const auto& [name, nets] : kNamed) {
    if (entry == name) {
      for (const char* n : nets) add(n);
      return;
    }
  }
  const std::size_t slash = entry.find('/');
  std::optional<Parsed> p = parse_address(entry.substr(0, slash));
  if (!p) throw std::invalid_argument("trustProxy: '" + std::string(entry) + "' is no address or network");
  const unsigned max = p->v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view bits = entry.substr(slash + 1);
    if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw std::invalid_argument("trustProxy: '" + std::string(entry) + "' has no prefix length after '/'");
    }
    prefix = static_cast<unsigned>(std::stoul(std::string(bits)));
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is an IPv4 one.
    if (!p->v6 && entry.find(':') != std::string_view::npos) prefix = prefix >= 96 ? prefix - 96 : 33;
    if (prefix > max) throw std::invalid_argument("trustProxy: '" + std::string(entry) + "' has a prefix past " + std::to_string(max));
  }
  Net n{p->v6, prefix, {}};
  std::memcpy(n.bytes, p->bytes, 16);
  nets_.push_back(n);
}

bool ProxyTrust::trusts(std::string_view address) const {
  if (nets_.empty()) return false;
  const std::optional<Parsed> p = parse_address(address);
  if (!p) return false;
  for (const Net& n : nets_) {
    if (n.v6 == p->v6 && prefix_matches(n.bytes, p->bytes, n.prefix)) return true;
  }
  return false;
}

std::string ProxyTrust::client_address(std::string_view peer,
                                       const std::vector<std::pair<std::string, std::string>>& headers) const {
  if (!trusts(peer)) return std::string(peer);
  // Every X-Forwarded-For line, in order, is one list; its right end is the hop nearest us.
  std::vector<std::string_view> hops;
  const std::string* real_ip = nullptr;
  for (const auto& [name, value] : headers) {
    if (http::iequals(name, "x-forwarded-for")) {
      if (value.empty()) continue;  // names no hop
      // Every element counts, an empty one too (it is no address: the walk stops there).
      std::string_view rest(value);
      while (true) {
        const std::size_t comma = rest.find(',');
        hops.push_back(http::trim(rest.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (!real_ip && http::iequals(name, "x-real-ip")) {
      real_ip = &value;
    }
  }
  std::string client(peer);
  if (!hops.empty()) {
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
      const std::optional<Parsed> p = parse_address(*it);
      if (!p) break;  // not an address: what it says is not to be believed
      client = format(*p);
      if (!trusts(client)) break;
    }
    return client;
  }
  if (real_ip) {
    if (const std::optional<Parsed> p = parse_address(http::trim(*real_ip))) return format(*p);
  }
  return client;
}

// ---------------------------------------------------------------------------- counters

Counter::Refusal Counter::admit(const std::string& key, std::uint32_t cap, const Rate& rate, std::uint64_t now_ms,
                                std::uint32_t* retry_after_ms) {
  std::lock_guard lock(mutex_);
  if (!started_) {
    origin_ms_ = now_ms;
    started_ = true;
  }
  const auto clock = static_cast<std::uint32_t>(now_ms - origin_ms_);
  // Keys with nothing open and a full bucket again are forgotten now and then, so that a
  // stream of addresses that each connect once does not grow the table for good.
  if (entries_.size() > 2 * swept_size_ + 1024 || now_ms - swept_at_ >= 60000) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      const bool idle = it->second.open == 0 && (!rate.on() || it->second.bucket.debt_of(rate, clock) <= 0);
      it = idle ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() >= kMaxKeys) {
      for (auto it = entries_.begin(); it != entries_.end();) it = it->second.open == 0 ? entries_.erase(it) : std::next(it);
    }
    swept_at_ = now_ms;
    swept_size_ = entries_.size();
  }
  Entry& e = entries_[key];
  if (cap > 0 && e.open >= cap) return Refusal::kTooMany;
  if (rate.on() && !e.bucket.take(rate, clock, retry_after_ms)) return Refusal::kTooFast;
  ++e.open;
  return Refusal::kNone;
}

void Counter::release(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.open == 0) return;
  --it->second.open;
}

std::size_t Counter::keys() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::uint32_t Counter::open(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.open;
}

// ---------------------------------------------------------------------------- setup, tickets

Setup::Setup(const LimitsOptions& o, const Setup* previous)
    : error_event(o.error_event),
      connections_per_ip(o.connections_per_ip),
      connections_per_user(o.connections_per_user),
      connect_rate{o.connect_rate_points, o.connect_rate_period_ms},
      idle_timeout_ms(o.idle_timeout_ms) {
  if (o.policy == "error") {
    policy = Policy::kError;
  } else if (o.policy == "drop") {
    policy = Policy::kDrop;
  } else if (o.policy == "disconnect") {
    policy = Policy::kDisconnect;
  } else {
    throw std::invalid_argument("limits.policy must be 'error', 'drop' or 'disconnect'");
  }
  for (const auto& e : o.events) {
    if (e.points == 0 || e.period_ms == 0) throw std::invalid_argument("limits.events['" + e.event + "'] needs points and a period");
    if (e.event == "*") {
      any = static_cast<int>(rules.size());
    } else if (rule_for(e.event) >= 0 && rule_for(e.event) != any) {
      throw std::invalid_argument("limits.events names '" + e.event + "' twice");
    }
    rules.push_back({e.event, {e.points, e.period_ms}});
  }
  for (const auto& t : o.trust_proxy) trust.add(t);
  if (previous) {
    addresses = previous->addresses;
    users = previous->users;
  }
}

int Setup::rule_for(std::string_view name) const {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (static_cast<int>(i) != any && rules[i].event == name) return static_cast<int>(i);
  }
  return any;
}

Ticket::Ticket(std::shared_ptr<const Setup> setup, std::string address)
    : setup_(std::move(setup)), address_(std::move(address)) {}

Ticket::~Ticket() {
  if (address_counted_) setup_->addresses->release(address_key_);
  for (const auto& u : users_) setup_->users->release(u);
}

Counter::Refusal Ticket::admit_address(std::uint32_t* retry_after_ms) {
  // No address known (a peer gone before it was asked): nothing to count it under.
  if (address_counted_ || address_.empty() || !setup_->admits_by_address()) return Counter::Refusal::kNone;
  std::string key = address_key(address_);
  const Counter::Refusal r =
      setup_->addresses->admit(key, setup_->connections_per_ip, setup_->connect_rate, steady_ms(), retry_after_ms);
  if (r == Counter::Refusal::kNone) {
    address_key_ = std::move(key);
    address_counted_ = true;
  }
  return r;
}

bool Ticket::admit_user(const std::string& user) {
  if (setup_->connections_per_user == 0 || user.empty()) return true;
  if (std::find(users_.begin(), users_.end(), user) != users_.end()) return true;
  if (setup_->users->admit(user, setup_->connections_per_user, Rate{}, steady_ms()) != Counter::Refusal::kNone) return false;
  users_.push_back(user);
  return true;
}

bool LogThrottle::allow(std::uint64_t* skipped) {
  const std::uint64_t second = steady_ms() / 1000;
  std::lock_guard lock(mutex_);
  if (second != window_) {
    window_ = second;
    in_window_ = 0;
  }
  if (in_window_ >= kPerSecond) {
    ++skipped_;
    return false;
  }
  ++in_window_;
  *skipped = std::exchange(skipped_, 0);
  return true;
}

LogThrottle& refusal_log() {
  static LogThrottle throttle;
  return throttle;
}

Admission admit(std::shared_ptr<const Setup> setup, std::string_view peer,
                const std::vector<std::pair<std::string, std::string>>& headers) {
  Admission a;
  a.address = setup->trust.client_address(peer, headers);
  auto ticket = std::make_unique<Ticket>(std::move(setup), a.address);
  a.refusal = ticket->admit_address(&a.retry_after_ms);
  switch (a.refusal) {
    case Counter::Refusal::kNone:
      a.ticket = std::move(ticket);
      break;
    case Counter::Refusal::kTooMany:
      a.message = "too many connections from this address (connectionsPerIp " +
                  std::to_string(ticket->setup().connections_per_ip) + ")";
      break;
    case Counter::Refusal::kTooFast:
      a.message = "too many connection attempts from this address (connectRatePerIp " +
                  std::to_string(ticket->setup().connect_rate.points) + " per " +
                  std::to_string(ticket->setup().connect_rate.period_ms) + " ms)";
      break;
  }
  return a;
}

std::uint32_t Admission::retry_after_seconds() const {
  return refusal == Counter::Refusal::kTooFast ? std::max<std::uint32_t>(1, (retry_after_ms + 999) / 1000) : 0;
}

std::string Admission::retry_after_header() const {
  const std::uint32_t s = retry_after_seconds();
  return s ? "Retry-After: " + std::to_string(s) + "\r\n" : std::string();
}

}  // namespace sidewire::guard
