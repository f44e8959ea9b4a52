#include "socketio/recovery.hpp"

#include <algorithm>

namespace sidewire::sio {

namespace {
std::string offset_text(std::uint64_t n) {
  // Short and opaque to the client, which only echoes it: base 36.
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  do {
    s.push_back(digits[n % 36]);
    n /= 36;
  } while (n);
  std::reverse(s.begin(), s.end());
  return s;
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
  if (!config.enabled) {
    namespaces_.clear();
    bytes_ = packets_ = records_ = 0;
  }
}

std::vector<ws::SharedFrame> RecoveryStore::log(
    std::uint32_t nsp, const std::vector<std::string>& rooms, const std::vector<std::string>& except, ClientId target,
    const std::function<std::vector<ws::SharedFrame>(const std::string&)>& encode) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  PerNamespace& n = namespaces_[nsp];
  Logged p;
  p.offset = offset_text(++n.next_offset);
  p.rooms = rooms;
  p.except = except;
  p.target = target;
  p.frames = encode(p.offset);
  p.at = now;
  p.bytes = sizeof(Logged) + p.offset.size() + cost_of(p.rooms) + cost_of(p.except);
  for (const auto& f : p.frames) p.bytes += f->size();
  std::vector<ws::SharedFrame> frames = p.frames;
  bytes_ += p.bytes;
  ++packets_;
  n.log.push_back(std::move(p));
  prune(now);
  return frames;
}

void RecoveryStore::persist(std::uint32_t nsp, std::string pid, std::string sid, ClientId socket,
                            std::vector<std::string> rooms) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  prune(now);
  auto [it, inserted] = namespaces_[nsp].records.insert_or_assign(std::move(pid), Record{std::move(sid), socket, std::move(rooms), now});
  if (inserted) ++records_;
}

bool RecoveryStore::includes(const Logged& p, const Record& r) {
  auto in = [&](const std::vector<std::string>& set) {
    for (const auto& room : r.rooms) {
      if (std::find(set.begin(), set.end(), room) != set.end()) return true;
    }
    return false;
  };
  if (in(p.except)) return false;
  if (p.target) return p.target == r.socket;
  return p.rooms.empty() || in(p.rooms);
}

std::optional<RecoveryStore::Restored> RecoveryStore::restore(std::uint32_t nsp, std::string_view pid,
                                                              std::string_view offset) {
  std::lock_guard lock(mutex_);
  prune(Clock::now());
  auto n = namespaces_.find(nsp);
  if (n == namespaces_.end()) return std::nullopt;
  auto r = n->second.records.find(std::string(pid));
  if (r == n->second.records.end()) return std::nullopt;
  const auto& log = n->second.log;
  auto from = std::find_if(log.begin(), log.end(), [&](const Logged& p) { return p.offset == offset; });
  if (from == log.end()) return std::nullopt;  // too old (or never ours): connect as new
  Restored out{r->second.sid, r->first, r->second.rooms, {}};
  for (auto it = std::next(from); it != log.end(); ++it) {
    if (includes(*it, r->second)) out.missed.insert(out.missed.end(), it->frames.begin(), it->frames.end());
  }
  return out;
}

void RecoveryStore::forget(std::uint32_t nsp, std::string_view pid) {
  std::lock_guard lock(mutex_);
  auto n = namespaces_.find(nsp);
  if (n == namespaces_.end()) return;
  if (n->second.records.erase(std::string(pid))) {
    --records_;
    ++totals_.recovered;
  }
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
    for (auto it = n.records.begin(); it != n.records.end();) {
      if (now - it->second.at > window) {
        it = n.records.erase(it);
        --records_;
        ++totals_.expired;
      } else {
        ++it;
      }
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
