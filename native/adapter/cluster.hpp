// The adapter seam: what the engine asks of the rest of the fleet, and how the fleet's
// messages come back in. The local fan-out (per-thread room tables of Socket.IO namespaces
// and raw channels) is the engine's own; a Cluster carries what happens here to the other
// nodes and hands what they did to the engine's LocalTarget. Redis (redis_adapter.cpp) is
// the one implementation today.
#pragma once

#include <cstdint>
#include <memory>
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
  // A command on the publishing connection; its reply reaches JS as kClusterReply (number =
  // `id`, data = the reply as JSON: a string, number, null, array, or {"error": message}).
  virtual void command(std::uint64_t id, std::vector<std::string> args) = 0;
  virtual ClusterStats stats() const = 0;
  virtual const std::string& uid() const = 0;
};

// Redis pub/sub, wire-compatible with @socket.io/redis-adapter. Its two connections live on
// `home`'s I/O thread.
std::shared_ptr<Cluster> make_redis_cluster(Worker& home, ClusterConfig config, LocalTarget& target);

}  // namespace sidewire::adapter
