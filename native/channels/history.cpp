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

History::Rooms::iterator History::create_locked(const std::string& name) {
  if (rooms_.size() >= options_.max_rooms) evict_one_locked(name);
  auto it = rooms_.emplace(name, Room{}).first;
  it->second.version = ++versions_;
  return it;
}

void History::append_locked(const std::string& name, const ws::SharedFrame& frame, std::uint64_t seq,
                            std::int64_t now, std::vector<Compaction>& due) {
  auto it = rooms_.find(name);
  if (it == rooms_.end()) {
    if (options_.max_rooms == 0) return;
    it = create_locked(name);
  }
  Room& room = it->second;
  room.entries.push_back({frame, seq, now});
  room.bytes += frame->size();
  room.last_at = now;
  ++messages_;
  bytes_ += frame->size();
  ++room.since_compaction;
  room.bytes_since_compaction += frame->size();
  if (!trim_locked(it)) return;
  if (options_.compact_after != 0 && !room.compacting &&
      (room.since_compaction >= options_.compact_after || room.bytes_since_compaction >= options_.max_bytes / 2)) {
    room.compacting = true;
    Compaction c{name, seq, room.version, {}};
    c.frames.reserve(room.entries.size());
    for (const Entry& e : room.entries) c.frames.push_back(e.frame);
    due.push_back(std::move(c));
  }
}

void History::erase_locked(Rooms::iterator it, std::uint64_t& counter) {
  messages_ -= it->second.entries.size();
  bytes_ -= it->second.bytes;
  counter += it->second.entries.size();
  rooms_.erase(it);
}

void History::pop_front_locked(Room& room, std::uint64_t& counter) {
  const std::size_t size = room.entries.front().frame->size();
  room.bytes -= size;
  bytes_ -= size;
  --messages_;
  ++counter;
  room.entries.pop_front();
}

bool History::trim_locked(Rooms::iterator it) {
  Room& room = it->second;
  while (!room.entries.empty() && (room.entries.size() > options_.max_messages || room.bytes > options_.max_bytes)) {
    if (room.entries.front().seq == 0) {
      // What the later entries build on (a merged document): without it they mean nothing.
      erase_locked(it, counters_.dropped);
      return false;
    }
    pop_front_locked(room, counters_.dropped);
  }
  return true;
}

void History::evict_one_locked(const std::string& keep) {
  auto oldest = rooms_.end();
  for (auto it = rooms_.begin(); it != rooms_.end(); ++it) {
    if (it->first == keep) continue;
    if (oldest == rooms_.end() || it->second.last_at < oldest->second.last_at) oldest = it;
  }
  if (oldest == rooms_.end()) return;
  ++counters_.rooms_evicted;
  erase_locked(oldest, counters_.dropped);
}

void History::sweep_locked(std::int64_t now) {
  if (options_.ttl_ms == 0) return;
  for (auto it = rooms_.begin(); it != rooms_.end();) {
    Room& room = it->second;
    bool gone = false;
    while (!room.entries.empty() && expired(room.entries.front(), now)) {
      if (room.entries.front().seq == 0) {
        auto next = std::next(it);
        erase_locked(it, counters_.expired);
        it = next;
        gone = true;
        break;
      }
      pop_front_locked(room, counters_.expired);
    }
    if (gone) continue;
    if (room.entries.empty() && !room.compacting) {
      it = rooms_.erase(it);
    } else {
      ++it;
    }
  }
}

void History::sweep() {
  std::lock_guard lock(mutex_);
  sweep_locked(now_ms());
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
  Compaction c{name, 0, 0, {}};
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (it == rooms_.end()) return c;
  c.version = it->second.version;
  const std::int64_t now = now_ms();
  for (const Entry& e : it->second.entries) {
    if (expired(e, now)) continue;
    c.frames.push_back(e.frame);
    c.upto = std::max(c.upto, e.seq);
  }
  return c;
}

std::size_t History::size(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  return it == rooms_.end() ? 0 : it->second.entries.size();
}

bool History::known(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  return it != rooms_.end() && it->second.loaded;
}

void History::mark_known(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (options_.max_rooms == 0) return;
  auto it = rooms_.find(name);
  if (it == rooms_.end()) it = create_locked(name);
  it->second.loaded = true;
}

History::Replaced History::replace(const std::string& name, std::uint64_t upto, std::uint64_t version,
                                   std::vector<ws::SharedFrame> frames, std::uint64_t delivered) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(name);
  if (version != 0) {
    // A compaction's result: for the room as it was snapshotted, once every thread has passed it.
    if (it == rooms_.end() || it->second.version != version) return Replaced::kStale;
    if (upto > delivered) {
      it->second.compacting = false;
      return Replaced::kLagging;
    }
  }
  if (upto == std::numeric_limits<std::uint64_t>::max()) upto = std::min(last_seq_, delivered);
  std::uint64_t bytes = 0;
  for (const ws::SharedFrame& f : frames) bytes += f->size();
  if (frames.size() > options_.max_messages || bytes > options_.max_bytes) {
    if (it != rooms_.end()) it->second.compacting = false;
    return Replaced::kTooLarge;
  }
  if (it == rooms_.end()) {
    if (frames.empty() || options_.max_rooms == 0) return Replaced::kDone;
    it = create_locked(name);
  }
  Room& room = it->second;
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
  if (version != 0) ++counters_.compactions;
  if (version == 0) room.loaded = true;  // the app set it
  room.version = ++versions_;
  room.compacting = false;
  room.last_at = now;
  if (room.entries.empty()) {
    rooms_.erase(it);
  } else {
    trim_locked(it);
  }
  return Replaced::kDone;
}

bool History::restore(const std::string& name, std::vector<ws::SharedFrame> frames) {
  std::lock_guard lock(mutex_);
  if (frames.empty() || options_.max_rooms == 0) return true;
  auto it = rooms_.find(name);
  if (it != rooms_.end()) {
    for (const Entry& e : it->second.entries) {
      if (e.seq == 0) return false;  // a compaction or a restore came first: it holds the state
    }
  } else {
    it = create_locked(name);
  }
  Room& room = it->second;
  const std::int64_t now = now_ms();
  for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
    room.bytes += (*f)->size();
    bytes_ += (*f)->size();
    ++messages_;
    room.entries.push_front({std::move(*f), 0, now});
  }
  room.version = ++versions_;
  room.loaded = true;
  room.last_at = now;
  trim_locked(it);
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
  std::uint64_t none = 0;
  erase_locked(it, none);
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
