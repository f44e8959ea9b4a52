// Connection state recovery (socket.io 4.6's connectionStateRecovery), the engine's side: a log
// of the packets broadcast or emitted in each namespace, each with an offset the client echoes
// back, and a record per socket that dropped for a recoverable reason (its ids and rooms), kept
// for maxDisconnectionDuration. A client that reconnects within the window with its private id
// and last offset gets its socket id and rooms back and every packet it missed, in order.
//
// Any thread: JS's thread logs (so the log's order is the order of the calls), the I/O threads
// persist and restore. One mutex, held for O(1) work on the hot path (logging); nothing here runs
// when recovery is off. Logged packets carry a sequence number: a recovered socket skips the
// ones it was already replayed, so a packet whose delivery was still queued when the socket came
// back arrives once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::sio {

struct RecoveryConfig {
  bool enabled = false;
  std::uint32_t max_disconnection_ms = 2 * 60 * 1000;  // socket.io's default
  // What the log and the records may hold in all (frames, names), a bound socket.io does not
  // have: past it the oldest packets go (then the oldest records), and a client whose offset
  // went with them connects as new.
  std::size_t max_bytes = 32u << 20;
};

class RecoveryStore {
 public:
  using Clock = std::chrono::steady_clock;

  void configure(const RecoveryConfig& config);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  std::uint32_t window_ms() const { return window_ms_.load(std::memory_order_relaxed); }

  struct Logged {
    std::vector<ws::SharedFrame> frames;
    std::uint64_t seq = 0;
  };
  // Logs one packet of namespace `nsp`, sent to the union of `rooms` (everyone when empty and
  // `target` is 0) or to the socket `target`, minus `except`. `encode(offset)` frames it with
  // its offset; the frames are what recipients get now and what a recovered client gets later.
  Logged log(std::uint32_t nsp, const std::vector<std::string>& rooms, const std::vector<std::string>& except,
             ClientId target, const std::function<std::vector<ws::SharedFrame>(const std::string&)>& encode);

  // A socket dropped for a recoverable reason: kept until the window closes.
  void persist(std::uint32_t nsp, std::string pid, std::string sid, ClientId socket, std::vector<std::string> rooms);

  struct Taken {
    std::string sid;
    std::string pid;
    ClientId socket = 0;             // the numeric id it had (direct emits were logged to it)
    std::vector<std::string> rooms;  // its own id included
    std::uint64_t after = 0;         // the sequence number of the last packet it got
  };
  // Takes the record `pid` left, if it has not expired and `offset` is still in the log, and
  // what it missed since would fit in `max_missed_bytes`; the record is gone from the store then
  // (put_back() returns it if the socket is refused). Nothing otherwise: it connects as new.
  std::optional<Taken> take(std::uint32_t nsp, std::string_view pid, std::string_view offset,
                            std::size_t max_missed_bytes);
  void put_back(std::uint32_t nsp, Taken taken);
  // Every frame of every packet logged after `taken.after` for it, in order, up to now: its
  // rooms', its old numeric id's, and `now_socket`'s (emits to the socket it is now), up to
  // `bound` (or now, if that is sooner). `upto` gets the last sequence number it covers: the
  // socket skips those packets when their delivery comes after the replay.
  std::vector<ws::SharedFrame> missed(std::uint32_t nsp, const Taken& taken, ClientId now_socket, std::uint64_t bound,
                                      std::uint64_t& upto);
  // The sequence number of the last packet logged in `nsp` (0: none).
  std::uint64_t last_seq(std::uint32_t nsp);

  struct Stats {
    std::uint64_t sessions = 0;   // disconnected sockets waiting to be recovered
    std::uint64_t packets = 0;    // packets in the logs
    std::uint64_t bytes = 0;      // what the logs and records hold
    std::uint64_t recovered = 0;  // since start
    std::uint64_t expired = 0;    // records dropped at the end of their window
    std::uint64_t evicted = 0;    // packets and records dropped for the byte bound
  };
  Stats stats();

 private:
  struct Packet {
    std::uint64_t seq = 0;
    std::vector<std::string> rooms;
    std::vector<std::string> except;
    ClientId target = 0;
    std::vector<ws::SharedFrame> frames;
    Clock::time_point at;
    std::size_t bytes = 0;
  };
  struct Record {
    std::string sid;
    ClientId socket = 0;
    std::vector<std::string> rooms;
    Clock::time_point at;
    std::size_t bytes = 0;
  };
  struct PerNamespace {
    std::deque<Packet> log;  // sequence numbers consecutive from log.front().seq
    std::uint64_t last_seq = 0;
    std::unordered_map<std::string, Record> records;                 // by private id
    std::deque<std::pair<Clock::time_point, std::string>> by_age;  // records' pids, oldest first (lazily cleaned)
  };
  void prune(Clock::time_point now);
  void add_record(PerNamespace& n, std::string pid, Record r);
  void drop_record(PerNamespace& n, std::unordered_map<std::string, Record>::iterator it);
  static bool includes(const Packet& p, const std::vector<std::string>& rooms, ClientId socket);
  static const Packet* find(const PerNamespace& n, std::string_view offset);

  std::atomic<bool> enabled_{false};
  std::atomic<std::uint32_t> window_ms_{2 * 60 * 1000};
  std::mutex mutex_;
  RecoveryConfig config_;
  std::unordered_map<std::uint32_t, PerNamespace> namespaces_;
  std::size_t bytes_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t records_ = 0;
  Stats totals_;
};

}  // namespace sidewire::sio
