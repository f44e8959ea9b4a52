// Raw WebSocket channels: a path such as /ws/fabric, its rooms, and its clients.
// Rooms live per I/O thread (each thread knows only its own members), so relaying and
// broadcasting touch no lock; a broadcast from JS is posted to every thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/ws_connection.hpp"
#include "rooms.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::adapter {
class Cluster;
}

namespace sidewire {

class ChannelClient;
using ChannelRoom = Room<ChannelClient>;
using ChannelRooms = RoomTable<ChannelClient>;

class Channel {
 public:
  Channel(std::uint32_t index, ChannelConfig config, std::vector<Worker*> workers,
          std::shared_ptr<EventSink> sink);

  std::uint32_t index() const { return index_; }
  const ChannelConfig& config() const { return config_; }
  const WsSettings& settings() const { return settings_; }
  EventSink& sink() { return *sink_; }
  ChannelRooms& rooms_on(unsigned worker) { return *tables_[worker]; }

  // Queues `frame` to the members of `room` ("" = every client) on thread `worker`. Runs there.
  void broadcast_local(unsigned worker, const std::string& room, const ws::SharedFrame& frame, ClientId except);
  // From thread `from`: this thread's members now, the other threads' by posting.
  void relay(unsigned from, ChannelRoom& room, const ws::SharedFrame& frame, ClientId except);

  std::atomic<bool> hook_open{false};
  std::atomic<bool> gated{false};  // upgrades go through JS first (Engine::listen leaves them to Node)
  std::atomic<bool> hook_message{false};
  std::atomic<bool> hook_close{false};
  std::atomic<std::uint64_t> connections{0};
  // The cluster adapter, once the channel joined it: broadcasts and relayed messages go to
  // the room's members on the other nodes too.
  std::atomic<adapter::Cluster*> cluster{nullptr};

  // Room sizes across all threads, for JS to read synchronously.
  RoomCounts& counts() { return counts_; }
  const RoomCounts& counts() const { return counts_; }

 private:
  std::uint32_t index_;
  ChannelConfig config_;
  WsSettings settings_;
  std::vector<Worker*> workers_;
  std::shared_ptr<EventSink> sink_;
  std::vector<std::unique_ptr<ChannelRooms>> tables_;
  RoomCounts counts_;
};

class ChannelClient final : public WsConnection {
 public:
  ChannelClient(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, Channel& channel);

  Channel& channel() { return channel_; }
  bool join(const std::string& room);
  bool leave(const std::string& room);

 protected:
  void on_message(std::uint8_t opcode, std::string_view payload) override;
  void on_closed(std::uint16_t code, std::string_view reason) override;
  bool feeds_js() const override;

 private:
  friend class RoomTable<ChannelClient>;
  std::vector<Membership<ChannelClient>>& memberships() { return rooms_; }
  std::uint32_t& everyone_slot() { return everyone_slot_; }
  bool handle_join_message(std::string_view payload);

  Channel& channel_;
  std::uint32_t everyone_slot_ = 0;
  std::vector<Membership<ChannelClient>> rooms_;
  bool in_everyone_ = false;
};

}  // namespace sidewire
