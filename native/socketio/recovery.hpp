// Connection state recovery (socket.io 4.6's connectionStateRecovery), the engine's side: a log
// of the packets broadcast or emitted in each namespace, each with an offset the client echoes
// back, and a record per socket that dropped for a recoverable reason (its ids and rooms), kept
// for maxDisconnectionDuration. A client that reconnects within the window with its private id
// and last offset gets its socket id and rooms back and every packet it missed, in order.
//
// Any thread: JS's thread logs (so the log's order is the order of the calls), the I/O threads
// persist and restore. One mutex; nothing here runs when recovery is off.
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
#include <vector>

#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::sio {

struct RecoveryConfig {
  bool enabled = false;
  std::uint32_t max_disconnection_ms = 2 * 60 * 1000;  // socket.io's default
  // What the log may hold in all (frames and room names), a bound socket.io does not have:
  // past it the oldest packets go, and a client whose offset went with them connects as new.
  std::size_t max_bytes = 32u << 20;
};

class RecoveryStore {
 public:
  using Clock = std::chrono::steady_clock;

  void configure(const RecoveryConfig& config);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  // Logs one packet of namespace `nsp`, sent to the union of `rooms` (everyone when empty and
  // `target` is 0) or to the socket `target`, minus `except`. `encode(offset)` frames it with
  // its offset; the frames are what recipients get now and what a recovered client gets later.
  std::vector<ws::SharedFrame> log(std::uint32_t nsp, const std::vector<std::string>& rooms,
                                   const std::vector<std::string>& except, ClientId target,
                                   const std::function<std::vector<ws::SharedFrame>(const std::string&)>& encode);

  // A socket dropped for a recoverable reason: kept until the window closes.
  void persist(std::uint32_t nsp, std::string pid, std::string sid, ClientId socket, std::vector<std::string> rooms);

  struct Restored {
    std::string sid;
    std::string pid;
    std::vector<std::string> rooms;       // its own id included
    std::vector<ws::SharedFrame> missed;  // every frame of every packet it missed, in order
  };
  // The socket `pid` dropped from, and what it missed after `offset`; nothing when the record
  // expired or is unknown, or when `offset` is no longer in the log. The record stays until
  // forget() (as socket.io, a refused reconnection can try again).
  std::optional<Restored> restore(std::uint32_t nsp, std::string_view pid, std::string_view offset);
  void forget(std::uint32_t nsp, std::string_view pid);

  struct Stats {
    std::uint64_t sessions = 0;   // disconnected sockets waiting to be recovered
    std::uint64_t packets = 0;    // packets in the logs
    std::uint64_t bytes = 0;      // what the logs hold
    std::uint64_t recovered = 0;  // since start
    std::uint64_t expired = 0;    // records dropped at the end of their window
    std::uint64_t evicted = 0;    // packets dropped from the log for its byte bound
  };
  Stats stats();

 private:
  struct Logged {
    std::string offset;
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
  };
  struct PerNamespace {
    std::deque<Logged> log;
    std::uint64_t next_offset = 0;
    std::unordered_map<std::string, Record> records;  // by private id
  };
  void prune(Clock::time_point now);
  static bool includes(const Logged& p, const Record& r);

  std::atomic<bool> enabled_{false};
  std::mutex mutex_;
  RecoveryConfig config_;
  std::unordered_map<std::uint32_t, PerNamespace> namespaces_;
  std::size_t bytes_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t records_ = 0;
  Stats totals_;
};

}  // namespace sidewire::sio
