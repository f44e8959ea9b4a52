#include "channels/history.hpp"

#include <algorithm>
#include <limits>

namespace sidewire {

History::History(HistoryOptions options) : options_(std::move(options)) {}

bool History::keeps(std::string_view payload) const {
  if (options_.prefixes.empty()) return true;
  for (const std::string& p : options_.prefixes) {
    if (payload.substr(0, p.size()) == p) return true;
  }
  return false;
}

void History::append_locked(const std::string& name, const ws::SharedFrame& frame, std::uint64_t seq,
                            std::int64_t now, std::vector<Compaction>& due) {
  auto it = rooms_.find(name);
  if (it == rooms_.end()) {
    if (options_.max_rooms == 0) return;
    if (rooms_.size() >= options_.max_rooms) evict_one_locked(name);
    it = rooms_.emplace(name, Room{}).first;
  }
  Room& room = it->second;
  room.entries.push_back({frame, seq, now});
  room.bytes += frame->size();
  room.last_at = now;
  ++messages_;
  bytes_ += frame->size();
  ++room.since_compaction;
  room.bytes_since_compaction += frame->size();
  trim_locked(room);
  if (options_.compact_after != 0 && !room.compacting &&
      (room.since_compaction >= options_.compact_after || room.bytes_since_compaction >= options_.max_bytes / 2)) {
    room.compacting = true;
    Compaction c{name, seq, {}};
    c.frames.reserve(room.entries.size());
    for (const Entry& e : room.entries) c.frames.push_back(e.frame);
    due.push_back(std::move(c));
  }
}

void History::trim_locked(Room& room) {
  while (!room.entries.empty() && (room.entries.size() > options_.max_messages || room.bytes > options_.max_bytes)) {
    const std::size_t size = room.entries.front().frame->size();
    room.bytes -= size;
    bytes_ -= size;
    --messages_;
    ++counters_.dropped;
    room.entries.pop_front();
  }
}

void History::evict_one_locked(const std::string& keep) {
  auto oldest = rooms_.end();
  for (auto it = rooms_.begin(); it != rooms_.end(); ++it) {
    if (it->first == keep) continue;
    if (oldest == rooms_.end() || it->second.last_at < oldest->second.last_at) oldest = it;
  }
  if (oldest == rooms_.end()) return;
  messages_ -= oldest->second.entries.size();
  bytes_ -= oldest->second.bytes;
  counters_.dropped += oldest->second.entries.size();
  ++counters_.rooms_evicted;
  rooms_.erase(oldest);
}

void History::sweep_locked(std::int64_t now, bool now_anyway) {
  if (options_.ttl_ms == 0 || (!now_anyway && now - last_sweep_ < 1000)) return;
  last_sweep_ = now;
  for (auto it = rooms_.begin(); it != rooms_.end();) {
    Room& room = it->second;
    while (!room.entries.empty() && expired(room.entries.front(), now)) {
      const std::size_t size = room.entries.front().frame->size();
      room.bytes -= size;
      bytes_ -= size;
      --messages_;
      ++counters_.expired;
      room.entries.pop_front();
    }
    if (room.entries.empty() && !room.compacting) {
      it = rooms_.erase(it);
    } else {
      ++it;
    }
  }
}

void History::sweep() {
  std::lock_guard lock(mutex_);
  sweep_locked(now_ms(), true);
}

std::vector<ws::SharedFrame> History::replay(const std::string& name, std::uint64_t delivered) {
  std::vector<ws::SharedFrame> out;
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return out;
  const std::int64_t now = now_ms();
  out.reserve(it->second.entries.size());
  for (const Entry& e : it->second.entries) {
    // Later entries are still on their way to this thread: the client gets them live.
    if (e.seq > delivered) break;
    if (!expired(e, now)) out.push_back(e.frame);
  }
  return out;
}

History::Compaction History::snapshot(const std::string& name) {
  Compaction c{name, 0, {}};
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return c;
  const std::int64_t now = now_ms();
  for (const Entry& e : it->second.entries) {
    if (expired(e, now)) continue;
    c.frames.push_back(e.frame);
    c.upto = std::max(c.upto, e.seq);
  }
  return c;
}

bool History::replace(const std::string& name, std::uint64_t upto, std::vector<ws::SharedFrame> frames) {
  std::lock_guard lock(mutex_);
  if (upto == std::numeric_limits<std::uint64_t>::max()) upto = last_seq_;
  auto it = rooms_.find(name);
  if (it == rooms_.end()) {
    if (frames.empty() || options_.max_rooms == 0) return true;
    if (rooms_.size() >= options_.max_rooms) evict_one_locked(name);
    it = rooms_.emplace(name, Room{}).first;
  }
  Room& room = it->second;
  if (upto != 0 && upto < room.compacted_upto) {
    room.compacting = false;
    return false;
  }
  const std::int64_t now = now_ms();
  // The kept entries after upto stay, behind the new ones; the new ones take the age of the
  // newest entry they replace, so that ttl_ms counts from what they stand for.
  std::int64_t at = now;
  std::deque<Entry> rest;
  for (Entry& e : room.entries) {
    if (e.seq != 0 && e.seq > upto) {
      rest.push_back(std::move(e));
    } else {
      at = e.at_ms;
      room.bytes -= e.frame->size();
      bytes_ -= e.frame->size();
      --messages_;
    }
  }
  room.entries.clear();
  for (ws::SharedFrame& f : frames) {
    room.bytes += f->size();
    bytes_ += f->size();
    ++messages_;
    room.entries.push_back({std::move(f), 0, at});
  }
  room.since_compaction = static_cast<std::uint32_t>(rest.size());
  room.bytes_since_compaction = 0;
  for (Entry& e : rest) {
    room.bytes_since_compaction += e.frame->size();
    room.entries.push_back(std::move(e));
  }
  if (upto != 0) {
    room.compacted_upto = upto;
    ++counters_.compactions;
  }
  room.compacting = false;
  room.last_at = now;
  trim_locked(room);
  if (room.entries.empty()) rooms_.erase(it);
  return true;
}

void History::compaction_failed(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (it != rooms_.end()) it->second.compacting = false;
}

void History::clear(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return;
  messages_ -= it->second.entries.size();
  bytes_ -= it->second.bytes;
  rooms_.erase(it);
}

History::Stats History::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = counters_;
  s.rooms = rooms_.size();
  s.messages = messages_;
  s.bytes = bytes_;
  return s;
}

}  // namespace sidewire
