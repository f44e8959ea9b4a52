// Abuse limits in the engine (`limits` and `trustProxy` of a Socket.IO server or a raw channel):
// token buckets per connection and event name, connection caps per client address and per
// user, a connect rate per address, the idle timeout, and which proxies may name the client's
// address. A throttled or refused client costs the engine a hash lookup and JS nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sidewire/engine.hpp"

namespace sidewire::guard {

// `points` per `period_ms`: a bucket that holds `points` and refills continuously.
struct Rate {
  std::uint32_t points = 0;  // 0: no limit
  std::uint32_t period_ms = 0;
  bool on() const { return points > 0 && period_ms > 0; }
};

// One token bucket, starting full. What it keeps is its debt (tokens taken and not yet
// refilled), so a zeroed bucket is a full one.
struct Bucket {
  double debt = 0;  // a double: a rate of one per day taken every millisecond still refills
  std::uint32_t at = 0;  // the clock of the last take (milliseconds, any origin)
  bool told = false;     // the client heard it is throttled, and has not passed since
  // Takes a token at `now`; false when there is none, with the wait for the next one.
  bool take(const Rate& rate, std::uint32_t now, std::uint32_t* retry_after_ms = nullptr);
  // What is still owed at `now` (0: full).
  double debt_of(const Rate& rate, std::uint32_t now) const;

 private:
  void debt_store(double d);
};

// trustProxy: the peers whose X-Forwarded-For / X-Real-IP name the client. Entries are
// addresses ("10.0.0.1", "::1"), networks ("10.0.0.0/8", "fd00::/8"), or the names
// "loopback", "linklocal" and "uniquelocal".
class ProxyTrust {
 public:
  // Throws std::invalid_argument naming the entry it cannot read.
  void add(std::string_view entry);
  bool empty() const { return nets_.empty(); }
  bool trusts(std::string_view address) const;
  // The client's address for a request from `peer`: `peer` itself unless it is trusted, then
  // the nearest address in X-Forwarded-For (read from the right, past trusted hops), else
  // X-Real-IP, else `peer`. An entry that is no address ends the walk at the hop before it.
  std::string client_address(std::string_view peer,
                             const std::vector<std::pair<std::string, std::string>>& headers) const;

 private:
  struct Net {
    bool v6;
    unsigned prefix;
    std::uint8_t bytes[16];
  };
  std::vector<Net> nets_;
};

// An address as the engine writes it (an IPv4-mapped IPv6 address as IPv4), or the text itself.
std::string canonical_address(std::string_view address);

// The key an address is counted under: IPv4 as it is (an IPv4-mapped IPv6 address as IPv4),
// IPv6 by its /64 (one subscriber's block: counting single IPv6 addresses would let one
// client take 2^64 of them). Text that is no address counts as itself.
std::string address_key(std::string_view address);

// Open connections per key and (for addresses) connects per key over time, for every I/O
// thread at once. Connects are rare next to messages: one mutex is enough.
class Counter {
 public:
  enum class Refusal { kNone, kTooMany, kTooFast };
  // One more connection for `key` unless `cap` (0: none) is reached or `rate` (when on) has no
  // token left; `now_ms` is a steady clock.
  Refusal admit(const std::string& key, std::uint32_t cap, const Rate& rate, std::uint64_t now_ms,
                std::uint32_t* retry_after_ms = nullptr);
  void release(const std::string& key);
  std::size_t keys() const;
  std::uint32_t open(const std::string& key) const;
  // Keys kept at most: past it the ones with nothing open are forgotten, rate state and all (a
  // client spreading over many addresses gets fresh buckets rather than growing the table).
  static constexpr std::size_t kMaxKeys = 100000;

 private:
  struct Entry {
    std::uint32_t open = 0;
    Bucket bucket;  // the connect rate, on a clock of this counter's own
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::uint64_t origin_ms_ = 0;  // the buckets' clock starts here
  bool started_ = false;
  std::uint64_t swept_at_ = 0;
  std::size_t swept_size_ = 0;
};

enum class Policy : std::uint8_t { kError, kDrop, kDisconnect };

// A server's or a channel's limits, made once from LimitsOptions and shared by the
// connections admitted under them (a reconfiguration makes a new one; those keep theirs).
struct Setup {
  // Throws std::invalid_argument. `previous`: the setup it replaces (a reconfiguration), whose
  // counts it keeps: connections admitted under either count against the same caps.
  explicit Setup(const LimitsOptions& options, const Setup* previous = nullptr);
  struct Rule {
    std::string event;
    Rate rate;
  };
  std::vector<Rule> rules;  // named events, in the order given
  int any = -1;             // the rule for every event not named ("*"), or -1
  Policy policy = Policy::kError;
  std::string error_event;
  std::uint32_t connections_per_ip = 0;
  std::uint32_t connections_per_user = 0;
  Rate connect_rate;
  std::uint32_t idle_timeout_ms = 0;
  ProxyTrust trust;
  std::shared_ptr<Counter> addresses = std::make_shared<Counter>();
  std::shared_ptr<Counter> users = std::make_shared<Counter>();

  // The rule for event `name`, or -1 when none applies.
  int rule_for(std::string_view name) const;
  bool limits_events() const { return !rules.empty(); }
  bool admits_by_address() const { return connections_per_ip > 0 || connect_rate.on(); }
};

// What a throttled message is told.
struct Verdict {
  bool pass = true;
  bool tell = false;  // drop it, and (the first time since it last passed) say why
  bool disconnect = false;
  std::uint32_t retry_after_ms = 0;
  int rule = -1;
};

// Per connection (or socket): a bucket per rule, made on the first message that needs one.
class Buckets {
 public:
  Verdict check(const Setup& setup, int rule, std::uint32_t now_ms);
  bool empty() const { return !buckets_; }

 private:
  std::unique_ptr<Bucket[]> buckets_;
};

// A connection admitted under a Setup: its client address and the users it is counted for.
// Releases its counts when it goes.
class Ticket {
 public:
  Ticket(std::shared_ptr<const Setup> setup, std::string address);
  ~Ticket();
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;

  const Setup& setup() const { return *setup_; }
  const std::string& address() const { return address_; }
  // The connection cap and connect rate of its address; once per ticket.
  Counter::Refusal admit_address(std::uint32_t* retry_after_ms);
  // connectionsPerUser: counts the connection for `user` (once per user per ticket).
  bool admit_user(const std::string& user);

 private:
  std::shared_ptr<const Setup> setup_;
  std::string address_;
  std::string address_key_;  // counted under it
  bool address_counted_ = false;
  std::vector<std::string> users_;
};

// A connection from `peer` with these request headers, admitted under `setup` or not: its
// ticket (the client's address through trustProxy, counted), or why it is refused (429).
struct Admission {
  std::unique_ptr<Ticket> ticket;  // null when refused
  Counter::Refusal refusal = Counter::Refusal::kNone;
  std::string address;             // the client's address
  std::uint32_t retry_after_ms = 0;
  std::string message;             // for the response and the log
  // Whole seconds to wait (at least 1) for a connect rate refusal, else 0.
  std::uint32_t retry_after_seconds() const;
  // "Retry-After: <seconds>\r\n" for a connect rate refusal, else empty.
  std::string retry_after_header() const;
};
Admission admit(std::shared_ptr<const Setup> setup, std::string_view peer,
                const std::vector<std::pair<std::string, std::string>>& headers);

// Refusal log lines, at most kPerSecond a second across the process: a flood of refused
// connections must not become a flood of writes to stderr. Says whether to log this one, and
// how many were left out since the last one logged (for that line to say).
class LogThrottle {
 public:
  static constexpr std::uint32_t kPerSecond = 20;
  bool allow(std::uint64_t* skipped);

 private:
  std::mutex mutex_;
  std::uint64_t window_ = 0;
  std::uint32_t in_window_ = 0;
  std::uint64_t skipped_ = 0;
};
LogThrottle& refusal_log();

// The steady clock in milliseconds, for Counter.
std::uint64_t steady_ms();

}  // namespace sidewire::guard
