// Raw WebSocket channels: a path such as /ws/fabric, its rooms, and its clients.
// Rooms are the channel's local adapter (adapter/local.hpp), per I/O thread, so relaying and
// broadcasting touch no lock; a broadcast from JS is posted to every thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/ws_connection.hpp"
#include "adapter/local.hpp"
#include "channels/history.hpp"
#include "auth/jwt.hpp"
#include "net/guard.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::adapter {
class Cluster;
}

namespace sidewire {

class ChannelClient;
using ChannelRooms = adapter::LocalAdapter<ChannelClient>;

class Channel {
 public:
  Channel(std::uint32_t index, ChannelConfig config, std::vector<Worker*> workers,
          std::shared_ptr<EventSink> sink);

  std::uint32_t index() const { return index_; }
  const ChannelConfig& config() const { return config_; }
  const WsSettings& settings() const { return settings_; }
  EventSink& sink() { return *sink_; }
  // Its rooms on every I/O thread, and their sizes summed (any thread).
  ChannelRooms& rooms() { return rooms_; }
  const ChannelRooms& rooms() const { return rooms_; }

  // Queues `frame` to the members of any of `rooms` (every client when empty) on thread
  // `worker`, each once, `except` not. Runs there.
  void broadcast_local(unsigned worker, const std::vector<std::string>& rooms, const ws::SharedFrame& frame,
                       ClientId except);
  // A message of `sender` (on thread `from`) to everyone who shares a room with it, once each:
  // this thread's members now, the other threads' by posting.
  void relay(unsigned from, ChannelClient& sender, const ws::SharedFrame& frame);
  // With a history: queues `frame` to the members of `rooms` on every thread (`except` not)
  // through the history's order, keeping it in those rooms when `keep`. Any thread.
  void publish_kept(const std::vector<std::string>& rooms, const ws::SharedFrame& frame, ClientId except, bool keep);
  // The channel's history (config().history), or null.
  History* history() { return history_.get(); }
  const History* history() const { return history_.get(); }
  // Whether a room's messages are kept: every room but the users' rooms.
  bool kept_room(std::string_view room) const { return history_ && !reserved_room(room); }
  // The last kept message thread `worker` delivered (its joiners' replay ends there).
  std::uint64_t delivered(unsigned worker) const { return delivered_[worker].load(std::memory_order_acquire); }
  // What every thread has delivered (a compaction may cover no more).
  std::uint64_t delivered_everywhere() const;

  std::atomic<bool> hook_open{false};
  std::atomic<bool> gated{false};  // upgrades go through JS first (Engine::listen leaves them to Node)
  // Upgrades into a room the history does not know go through JS first (to be loaded).
  std::atomic<bool> history_gated{false};
  std::atomic<bool> hook_message{false};
  std::atomic<bool> hook_close{false};
  std::atomic<std::uint64_t> connections{0};
  // The cluster adapter, once the channel joined it: broadcasts and relayed messages go to
  // the room's members on the other nodes too.
  std::atomic<adapter::Cluster*> cluster{nullptr};
  // JWT authentication (ChannelConfig::jwt), set once when the channel is made.
  std::shared_ptr<const auth::JwtSetup> jwt;
  // limits / trustProxy (ChannelConfig::limits), set once when the channel is made.
  std::shared_ptr<const guard::Setup> guard;
  // A users' room (<user_room_prefix><sub>), which only the engine joins clients to.
  bool reserved_room(std::string_view room) const {
    return jwt && !jwt->user_room_prefix.empty() && room.substr(0, jwt->user_room_prefix.size()) == jwt->user_room_prefix;
  }

 private:
  std::uint32_t index_;
  ChannelConfig config_;
  WsSettings settings_;
  std::vector<Worker*> workers_;
  std::shared_ptr<EventSink> sink_;
  ChannelRooms rooms_;
  std::unique_ptr<History> history_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> delivered_;
};

class ChannelClient final : public WsConnection {
 public:
  ChannelClient(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, Channel& channel);

  Channel& channel() { return channel_; }
  bool join(const std::string& room);
  bool leave(const std::string& room);
  // Its admission under the channel's limits: counted until it closes.
  void set_ticket(std::unique_ptr<guard::Ticket> ticket) { ticket_ = std::move(ticket); }
  void set_address(std::string address) { address_ = std::move(address); }
  // auth.jwt: whose token it is (its sub and iss) and when it expires (seconds since the epoch,
  // 0: never). Past it the connection is closed (1008 "token expired") unless the client sent a
  // fresh one: {"refresh":"<token>"}, answered {"refreshed":true,"exp":N} or
  // {"refreshed":false,"reason":...}, never reaching JS.
  void set_token(std::string sub, std::string issuer, std::int64_t expires_at);
  std::string_view peer_address() const override { return address_; }

 protected:
  void on_message(std::uint8_t opcode, std::string_view payload) override;
  void on_closed(std::uint16_t code, std::string_view reason) override;
  bool feeds_js() const override;

 private:
  friend class RoomTable<ChannelClient>;
  friend class adapter::LocalAdapter<ChannelClient>;
  std::vector<Membership<ChannelClient>>& memberships() { return rooms_; }
  std::uint32_t& everyone_slot() { return everyone_slot_; }
  std::uint32_t& mark() { return mark_; }
  bool selectable() const { return true; }
  bool handle_join_message(std::string_view payload);
  bool handle_refresh(std::string_view payload);
  void on_timer(std::uint32_t now_ms) override;
  void on_started() override;
  // The room's history, up to what this thread delivered (a join after the handshake).
  void replay(const std::string& room);
  // limits.events['*']: false when the message is over its rate (dropped; told or closed by policy).
  bool admit_message();

  Channel& channel_;
  std::uint32_t everyone_slot_ = 0;
  std::uint32_t mark_ = 0;
  std::vector<Membership<ChannelClient>> rooms_;
  std::unique_ptr<guard::Ticket> ticket_;
  std::unique_ptr<guard::Buckets> buckets_;
  std::string address_;  // the client's (through trustProxy)
  struct Token {
    std::string sub, issuer;
    std::int64_t expires_at = 0;
    std::uint32_t checked_at = 0;  // the I/O thread's clock at the last look
  };
  std::unique_ptr<Token> token_;  // only with auth.jwt
  bool in_everyone_ = false;
  bool started_ = false;  // the 101 is queued: a join's replay can be sent
};

}  // namespace sidewire
