// The adapter seam: what the engine asks of the rest of the fleet, and how the fleet's
// messages come back in. The local fan-out is the local adapter (adapter/local.hpp), one per
// Socket.IO namespace and raw channel; a Cluster wraps those: it carries what happens here to
// the other nodes and hands what they did to the engine's LocalTarget, which applies it through
// the local adapters. Redis (redis_adapter.cpp) is the one implementation today.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapter/wire.hpp"
#include "sidewire/engine.hpp"

namespace sidewire {
class Worker;
}

namespace sidewire::adapter {

// Where the fleet's messages land: called on the adapter's thread.
class LocalTarget {
 public:
  virtual ~LocalTarget() = default;
  virtual void deliver(SioBroadcast&& b) = 0;
  virtual void deliver(ChannelBroadcast&& b) = 0;
  virtual void to_js(Event e) = 0;  // request-protocol messages, command replies, state changes
  // socketsJoin / socketsLeave / disconnectSockets another node asked of a selection (request
  // types 2, 3, 4 with opts), applied here before any later message from Redis: a broadcast
  // that follows a socketsJoin (the emitter's join-then-emit) finds the sockets in the room.
  enum class SocketsOp : std::uint8_t { kJoin, kLeave, kDisconnect };
  virtual void sockets_op(const std::string& nsp, SocketsOp op, std::vector<std::string> rooms,
                          std::vector<std::string> except, std::vector<std::string> targets, bool close) = 0;
  // How many sockets of namespace `nsp` are in `room` on this node now (any thread).
  virtual std::uint64_t room_size(const std::string& nsp, const std::string& room) = 0;
};

// A session found in the fleet's store (the streams adapter), with the packets it missed: the
// broadcasts of its namespace that addressed it since its offset, each with its own offset.
struct RestoredSession {
  StreamSession session;
  std::vector<SioBroadcast> missed;
};

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual void start() = 0;
  virtual void stop() = 0;  // for good; idempotent
  // From any thread; the work is posted to the adapter's thread in call order.
  virtual void add_namespace(const std::string& nsp) = 0;
  virtual void add_channel(const std::string& path) = 0;
  virtual void publish(SioBroadcast b) = 0;
  virtual void publish(ChannelBroadcast b) = 0;
  virtual void publish_raw(std::string channel, std::string payload) = 0;
  // A room of a namespace in the fleet became non-empty or empty on this node (called in
  // no particular order across threads: the adapter reads room_size() when it gets there).
  // The sharded adapter's dynamic modes keep a channel per room.
  virtual void room_changed(const std::string& nsp, const std::string& room) = 0;
  // A socket connected (true) or left: dynamic-private keeps a channel per socket too. Called
  // from the socket's own thread, in order.
  virtual void socket_changed(const std::string& nsp, const std::string& sid, bool connected) = 0;
  // A command on the publishing connection; its reply reaches JS as kClusterReply (number =
  // `id`, data = the reply as JSON: a string, number, null, array, or {"error": message}).
  virtual void command(std::uint64_t id, std::vector<std::string> args) = 0;
  // Connection state recovery across the fleet (the streams adapter): sessions and the packets
  // they miss are kept in Redis, not in this engine's store. Then a recoverable broadcast is
  // published with deliver_here set and comes back to the target once it has its offset.
  virtual bool keeps_sessions() const { return false; }
  // Takes the session `pid` left in namespace `nsp` if `offset` is still in the stream, with what
  // it missed (nothing when that is over `max_bytes`). `done` runs once, on the adapter's thread
  // (nullopt: connect it as new).
  virtual void restore_session(std::string nsp, std::string pid, std::string offset, std::size_t max_bytes,
                               std::function<void(std::optional<RestoredSession>)> done) {
    (void)nsp, (void)pid, (void)offset, (void)max_bytes;
    done(std::nullopt);
  }
  // Keeps a disconnected socket's session for `ttl_ms`.
  virtual void persist_session(StreamSession session, std::uint32_t ttl_ms) { (void)session, (void)ttl_ms; }
  virtual ClusterStats stats() const = 0;
  virtual const std::string& uid() const = 0;
};

// Redis pub/sub, wire-compatible with @socket.io/redis-adapter (its createAdapter, or its
// createShardedAdapter when config.mode is "sharded"), or Redis streams, wire-compatible with
// @socket.io/redis-streams-adapter (config.mode "streams"). Its two connections live on `home`'s
// I/O thread. Throws std::invalid_argument for a URL or mode it cannot use.
std::shared_ptr<Cluster> make_redis_cluster(Worker& home, ClusterConfig config, LocalTarget& target);

}  // namespace sidewire::adapter
