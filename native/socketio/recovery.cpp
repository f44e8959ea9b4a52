#include "socketio/recovery.hpp"

#include <algorithm>

namespace sidewire::sio {

namespace {
constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

// Offsets are sequence numbers in base 36: short, and the client only echoes them.
std::string offset_text(std::uint64_t n) {
  std::string s;
  do {
    s.push_back(kDigits[n % 36]);
    n /= 36;
  } while (n);
  std::reverse(s.begin(), s.end());
  return s;
}

std::optional<std::uint64_t> parse_offset(std::string_view s) {
  if (s.empty() || s.size() > 12) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    else return std::nullopt;
    n = n * 36 + static_cast<std::uint64_t>(d);
  }
  if (offset_text(n) != s) return std::nullopt;  // one spelling only
  return n;
}

// An entry of by_age, which outlives its record until it reaches the front: counted too.
std::size_t age_entry_cost(const std::string& pid) {
  return sizeof(std::pair<std::chrono::steady_clock::time_point, std::string>) + pid.size();
}

std::size_t cost_of(const std::vector<std::string>& names) {
  std::size_t n = 0;
  for (const auto& s : names) n += s.size() + sizeof(std::string);
  return n;
}
}  // namespace

void RecoveryStore::configure(const RecoveryConfig& config) {
  std::lock_guard lock(mutex_);
  config_ = config;
  enabled_.store(config.enabled, std::memory_order_relaxed);
  window_ms_.store(config.max_disconnection_ms, std::memory_order_relaxed);
  if (!config.enabled) {
    namespaces_.clear();
    bytes_ = packets_ = records_ = 0;
  }
}

RecoveryStore::Logged RecoveryStore::log(
    std::uint32_t nsp, const std::vector<std::string>& rooms, const std::vector<std::string>& except, ClientId target,
    const std::function<std::vector<ws::SharedFrame>(const std::string&)>& encode) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  PerNamespace& n = namespaces_[nsp];
  Packet p;
  p.seq = ++n.last_seq;
  p.rooms = rooms;
  p.except = except;
  p.target = target;
  p.frames = encode(offset_text(p.seq));
  p.at = now;
  p.bytes = sizeof(Packet) + cost_of(p.rooms) + cost_of(p.except);
  for (const auto& f : p.frames) p.bytes += f->size();
  Logged out{p.frames, p.seq};
  bytes_ += p.bytes;
  ++packets_;
  n.log.push_back(std::move(p));
  prune(now);
  return out;
}

void RecoveryStore::add_record(PerNamespace& n, std::string pid, Record r) {
  r.bytes = sizeof(Record) + 2 * pid.size() + r.sid.size() + cost_of(r.rooms);
  auto it = n.records.find(pid);
  if (it != n.records.end()) drop_record(n, it);
  bytes_ += r.bytes + age_entry_cost(pid);
  ++records_;
  n.by_age.emplace_back(r.at, pid);
  n.records.emplace(std::move(pid), std::move(r));
}

void RecoveryStore::drop_record(PerNamespace& n, std::unordered_map<std::string, Record>::iterator it) {
  bytes_ -= it->second.bytes;
  --records_;
  n.records.erase(it);  // its by_age entry goes when it reaches the front
}

void RecoveryStore::persist(std::uint32_t nsp, std::string pid, std::string sid, ClientId socket,
                            std::vector<std::string> rooms) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  add_record(namespaces_[nsp], std::move(pid), Record{std::move(sid), socket, std::move(rooms), now, 0});
  prune(now);
}

bool RecoveryStore::includes(const Packet& p, const std::vector<std::string>& rooms, ClientId socket) {
  auto in = [&](const std::vector<std::string>& set) {
    for (const auto& room : rooms) {
      if (std::find(set.begin(), set.end(), room) != set.end()) return true;
    }
    return false;
  };
  if (in(p.except)) return false;
  if (p.target) return p.target == socket;
  return p.rooms.empty() || in(p.rooms);
}

const RecoveryStore::Packet* RecoveryStore::find(const PerNamespace& n, std::string_view offset) {
  const auto seq = parse_offset(offset);
  if (!seq || n.log.empty() || *seq < n.log.front().seq || *seq > n.log.back().seq) return nullptr;
  return &n.log[static_cast<std::size_t>(*seq - n.log.front().seq)];
}

std::optional<RecoveryStore::Taken> RecoveryStore::take(std::uint32_t nsp, std::string_view pid,
                                                       std::string_view offset, std::size_t max_missed_bytes) {
  std::lock_guard lock(mutex_);
  prune(Clock::now());
  auto n = namespaces_.find(nsp);
  if (n == namespaces_.end()) return std::nullopt;
  auto r = n->second.records.find(std::string(pid));
  if (r == n->second.records.end()) return std::nullopt;
  const Packet* from = find(n->second, offset);
  if (!from) return std::nullopt;  // too old (or never ours): connect as new
  std::size_t missed = 0;
  const auto& log = n->second.log;
  for (auto i = static_cast<std::size_t>(from->seq - log.front().seq) + 1; i < log.size(); ++i) {
    if (!includes(log[i], r->second.rooms, r->second.socket)) continue;
    for (const auto& f : log[i].frames) missed += f->size();
    if (missed > max_missed_bytes) {
      // More than its connection could queue: replaying it would drop the client again (and
      // again, each time it came back). It connects as new.
      drop_record(n->second, r);
      return std::nullopt;
    }
  }
  Taken t{r->second.sid, r->first, r->second.socket, std::move(r->second.rooms), from->seq};
  drop_record(n->second, r);
  return t;
}

void RecoveryStore::put_back(std::uint32_t nsp, Taken taken) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  add_record(namespaces_[nsp], std::move(taken.pid), Record{std::move(taken.sid), taken.socket, std::move(taken.rooms), now, 0});
  prune(now);
}

std::uint64_t RecoveryStore::last_seq(std::uint32_t nsp) {
  std::lock_guard lock(mutex_);
  auto n = namespaces_.find(nsp);
  return n == namespaces_.end() ? 0 : n->second.last_seq;
}

std::vector<ws::SharedFrame> RecoveryStore::missed(std::uint32_t nsp, const Taken& taken, ClientId now_socket,
                                                   std::uint64_t bound, std::uint64_t& upto) {
  std::lock_guard lock(mutex_);
  std::vector<ws::SharedFrame> out;
  PerNamespace& n = namespaces_[nsp];
  upto = std::min(bound, n.last_seq);
  ++totals_.recovered;
  if (n.log.empty()) return out;
  // Packets logged after its offset; those pruned since take() are gone (it asked just now).
  std::size_t i = taken.after >= n.log.front().seq ? static_cast<std::size_t>(taken.after - n.log.front().seq) + 1 : 0;
  for (; i < n.log.size() && n.log[i].seq <= upto; ++i) {
    const Packet& p = n.log[i];
    if (includes(p, taken.rooms, taken.socket) || (p.target != 0 && p.target == now_socket)) {
      out.insert(out.end(), p.frames.begin(), p.frames.end());
    }
  }
  return out;
}

void RecoveryStore::prune(Clock::time_point now) {
  const auto window = std::chrono::milliseconds(config_.max_disconnection_ms);
  for (auto& [index, n] : namespaces_) {
    while (!n.log.empty() && (now - n.log.front().at > window || bytes_ > config_.max_bytes)) {
      if (now - n.log.front().at <= window) ++totals_.evicted;
      bytes_ -= n.log.front().bytes;
      --packets_;
      n.log.pop_front();
    }
    while (!n.by_age.empty()) {
      auto& [at, pid] = n.by_age.front();
      auto it = n.records.find(pid);
      const bool current = it != n.records.end() && it->second.at == at;
      if (current && now - at <= window && bytes_ <= config_.max_bytes) break;
      if (current) {
        if (now - at > window) ++totals_.expired;
        else ++totals_.evicted;
        drop_record(n, it);
      }
      bytes_ -= age_entry_cost(pid);
      n.by_age.pop_front();
    }
  }
}

RecoveryStore::Stats RecoveryStore::stats() {
  std::lock_guard lock(mutex_);
  prune(Clock::now());
  Stats s = totals_;
  s.sessions = records_;
  s.packets = packets_;
  s.bytes = bytes_;
  return s;
}

}  // namespace sidewire::sio
