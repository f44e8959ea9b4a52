// A raw channel's room history (ChannelConfig::history): the messages relayed or broadcast to
// each room, kept so that a client joining later gets them, in order, before anything live.
//
// One store per channel, behind one mutex: every message it keeps gets the next sequence
// number under that lock, and the caller queues the message's deliveries to the I/O threads
// while still holding it (record's `queue`), so each thread receives the channel's kept
// messages in sequence order. A thread notes the last sequence it delivered; a client joining
// there is replayed exactly the entries up to that mark, and gets every later one live: none
// twice, none missed.
//
// Entries a compaction (a JS hook) or a restore put in have sequence 0: they stand for what
// came before, and are always replayed.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sidewire {

class History {
 public:
  struct Entry {
    ws::SharedFrame frame;  // the framed message, as it was delivered
    std::uint64_t seq = 0;
    std::int64_t at_ms = 0;  // when it was kept (steady clock), for ttl_ms
  };
  // The entries a compaction hook is handed: those with seq <= upto, and every seq-0 one, of
  // the room as it was at `version` (every replace or restore makes a new one).
  struct Compaction {
    std::string room;
    std::uint64_t upto = 0;
    std::uint64_t version = 0;
    std::vector<ws::SharedFrame> frames;
  };
  enum class Replaced : std::uint8_t {
    kDone,
    kStale,     // the room changed (another compaction, a restore, a clear) since the snapshot
    kLagging,   // a thread has not delivered `upto` yet: a joiner there would get those twice
    kTooLarge,  // the result alone is past max_messages or max_bytes
  };
  struct Stats {
    std::uint64_t rooms = 0, messages = 0, bytes = 0;
    std::uint64_t dropped = 0;       // entries pushed out by max_messages, max_bytes or max_rooms
    std::uint64_t expired = 0;       // entries past ttl_ms
    std::uint64_t compactions = 0;   // compactions whose result was put in
    std::uint64_t rooms_evicted = 0; // rooms dropped whole for max_rooms
  };

  explicit History(HistoryOptions options);

  const HistoryOptions& options() const { return options_; }
  // Whether a message with this payload is kept (HistoryOptions::prefixes).
  bool keeps(std::string_view payload) const;

  // Keeps `frame` in each of `rooms` (the ones `kept_room` accepts; none when `keep` is false)
  // under the next sequence number and calls queue(seq) before letting go of the lock. Returns
  // the compactions due (rooms past compact_after messages or half of max_bytes since their
  // last one, with none in flight).
  template <typename KeptRoom, typename Queue>
  std::vector<Compaction> record(const std::vector<std::string>& rooms, const ws::SharedFrame& frame, bool keep,
                                 KeptRoom&& kept_room, Queue&& queue) {
    std::vector<Compaction> due;
    std::lock_guard lock(mutex_);
    const std::uint64_t seq = ++last_seq_;
    if (keep) {
      const std::int64_t now = now_ms();
      for (const std::string& room : rooms) {
        if (kept_room(room)) append_locked(room, frame, seq, now, due);
      }
    }
    queue(seq);
    return due;
  }

  // The frames a client joining `room` on a thread whose last delivered sequence is `delivered`
  // gets, in order.
  std::vector<ws::SharedFrame> replay(const std::string& room, std::uint64_t delivered);
  // Every entry of `room` (for JS), and the last sequence among them.
  Compaction snapshot(const std::string& room);
  // Puts `frames` in place of the entries with seq <= upto and the seq-0 ones. `version`: the
  // snapshot's (a compaction: refused when the room changed since), or 0 (from the app: always).
  // `delivered`: the lowest sequence every thread has delivered; a result covering more waits.
  // upto = UINT64_MAX: everything the threads delivered.
  Replaced replace(const std::string& room, std::uint64_t upto, std::uint64_t version, std::vector<ws::SharedFrame> frames,
                   std::uint64_t delivered);
  // The app's stored state, in front of what the room keeps (History hook `load`). False when
  // the room already holds such a state (a compaction or another restore came first).
  bool restore(const std::string& room, std::vector<ws::SharedFrame> frames);
  std::size_t size(const std::string& room) const;
  // A room the store knows: loaded (restore), set by the app, or told there is none to load
  // (mark_known). A room that only messages made is not known: its base may be in the app's store.
  // The listener takes upgrades into known rooms itself; the others go to JS to be loaded first.
  bool known(const std::string& room) const;
  void mark_known(const std::string& room);
  // A compaction hook failed or returned nothing usable: the room may be compacted again.
  void compaction_failed(const std::string& room);
  void clear(const std::string& room);
  Stats stats() const;
  // Expired entries out (ttl_ms); the channel's owner calls it on a timer.
  void sweep();

 private:
  struct Room {
    std::deque<Entry> entries;
    std::uint64_t bytes = 0;
    std::uint64_t version = 0;  // new at creation and at every replace or restore
    bool loaded = false;        // restored, set by the app, or marked known (not just sent to)
    std::uint32_t since_compaction = 0;
    std::uint64_t bytes_since_compaction = 0;
    bool compacting = false;
    std::int64_t last_at = 0;
  };
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  using Rooms = std::unordered_map<std::string, Room>;
  void append_locked(const std::string& name, const ws::SharedFrame& frame, std::uint64_t seq, std::int64_t now,
                     std::vector<Compaction>& due);
  // Past the bounds the oldest go; when the oldest is a compacted or restored state (what the
  // rest builds on), the room goes whole. False when it went.
  bool trim_locked(Rooms::iterator it);
  void erase_locked(Rooms::iterator it, std::uint64_t& counter);
  void pop_front_locked(Room& room, std::uint64_t& counter);
  void sweep_locked(std::int64_t now);
  Rooms::iterator create_locked(const std::string& name);
  void evict_one_locked(const std::string& keep);
  bool expired(const Entry& e, std::int64_t now) const {
    return options_.ttl_ms != 0 && now - e.at_ms >= static_cast<std::int64_t>(options_.ttl_ms);
  }

  const HistoryOptions options_;
  mutable std::mutex mutex_;
  Rooms rooms_;
  std::uint64_t last_seq_ = 0;
  std::uint64_t versions_ = 0;
  std::uint64_t messages_ = 0, bytes_ = 0;
  Stats counters_;
};

}  // namespace sidewire
