#include "channels/channel.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "adapter/cluster.hpp"
#include "log.hpp"

namespace sidewire {

bool RoomCounts::add(const std::string& room, int delta) {
  std::lock_guard lock(mutex_);
  auto& n = counts_[room];
  const bool appeared = n == 0;
  n += delta;
  if (n == 0) {
    counts_.erase(room);
    return true;
  }
  return appeared;
}

std::uint64_t RoomCounts::size(const std::string& room) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(room);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, std::uint64_t>> RoomCounts::all() const {
  std::lock_guard lock(mutex_);
  return {counts_.begin(), counts_.end()};
}

Channel::Channel(std::uint32_t index, ChannelConfig config, std::vector<Worker*> workers,
                 std::shared_ptr<EventSink> sink)
    : index_(index), config_(std::move(config)), workers_(std::move(workers)), sink_(std::move(sink)) {
  settings_.max_payload = config_.max_payload;
  settings_.ping_interval_ms = config_.ping_interval_ms;
  settings_.ping_timeout_ms = config_.ping_timeout_ms;
  settings_.max_queued_bytes = config_.max_queued_bytes;
  settings_.message_timeout_ms = config_.message_timeout_ms;
  for (std::size_t i = 0; i < workers_.size(); ++i) tables_.push_back(std::make_unique<ChannelRooms>());
}

void Channel::broadcast_local(unsigned worker, const std::string& room, const ws::SharedFrame& frame,
                              ClientId except) {
  ChannelRooms& table = *tables_[worker];
  ChannelRoom* r = room.empty() ? &table.everyone() : table.find(room);
  if (!r) return;
  for (ChannelClient* member : r->members) {
    if (member->id() != except) member->send(frame);
  }
}

void Channel::relay(unsigned from, ChannelRoom& room, const ws::SharedFrame& frame, ClientId except) {
  for (ChannelClient* member : room.members) {
    if (member->id() != except) member->send(frame);
  }
  for (Worker* w : workers_) {
    if (w->index() == from) continue;
    boost::asio::post(w->io(), [this, w, name = room.name, frame, except] {
      broadcast_local(w->index(), name, frame, except);
    });
  }
}

ChannelClient::ChannelClient(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, Channel& channel)
    : WsConnection(worker, std::move(socket), id, channel.settings()), channel_(channel) {
  channel_.rooms_on(worker_.index()).add_to_everyone(this);
  in_everyone_ = true;
}

bool ChannelClient::feeds_js() const { return channel_.hook_message.load(std::memory_order_relaxed); }

bool ChannelClient::join(const std::string& room) {
  if (room.empty() || !open()) return false;
  if (rooms_.size() >= channel_.config().max_rooms) {
    if (channel_.rooms_on(worker_.index()).is_member(this, room)) return false;
    count_limit(worker_.metrics(), Limit::kRooms);
    log().warn("connection {} on {}: already in {} rooms, join of another refused", id(), channel_.config().path,
               rooms_.size());
    return false;
  }
  if (!channel_.rooms_on(worker_.index()).join(this, room)) return false;
  channel_.counts().add(room, +1);
  return true;
}

bool ChannelClient::leave(const std::string& room) {
  if (!channel_.rooms_on(worker_.index()).leave(this, room)) return false;
  channel_.counts().add(room, -1);
  return true;
}

bool ChannelClient::handle_join_message(std::string_view payload) {
  // Only small JSON objects that start like a join or leave command are parsed; every other
  // message goes by untouched.
  if (payload.size() > 1024 || payload.empty() || payload.front() != '{') return false;
  if (payload.find("\"join\"") == std::string_view::npos && payload.find("\"leave\"") == std::string_view::npos) {
    return false;
  }
  const auto json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.size() != 1) return false;
  if (auto it = json.find("join"); it != json.end() && it->is_string()) {
    const std::string room = it->get<std::string>();
    if (!join(room) && rooms_.size() >= channel_.config().max_rooms &&
        !channel_.rooms_on(worker_.index()).is_member(this, room)) {
      close(ws::kPolicyViolation, "too many rooms");
    }
    return true;
  }
  if (auto it = json.find("leave"); it != json.end() && it->is_string()) {
    leave(it->get<std::string>());
    return true;
  }
  return false;
}

void ChannelClient::on_message(std::uint8_t opcode, std::string_view payload) {
  const ChannelConfig& config = channel_.config();
  if (config.join_messages && opcode == ws::kText && handle_join_message(payload)) return;
  if (config.relay && !rooms_.empty()) {
    const ws::SharedFrame frame = ws::make_shared_frame(opcode, payload);  // framed once per message
    adapter::Cluster* cluster = channel_.cluster.load(std::memory_order_acquire);
    for (const auto& m : rooms_) {
      channel_.relay(worker_.index(), *m.room, frame, id());
      if (cluster) {
        adapter::ChannelBroadcast b;
        b.path = config.path;
        b.room = m.room->name;
        b.payload.assign(payload);
        b.binary = opcode == ws::kBinary;
        cluster->publish(std::move(b));
      }
    }
  }
  if (channel_.hook_message.load(std::memory_order_relaxed)) {
    Event e(Event::Type::kMessage);
    e.binary = opcode == ws::kBinary;
    e.channel = channel_.index();
    e.client = id();
    e.data.assign(payload);
    channel_.sink().push(std::move(e));
  }
}

void ChannelClient::on_closed(std::uint16_t code, std::string_view reason) {
  ChannelRooms& rooms = channel_.rooms_on(worker_.index());
  rooms.leave_all(this, [this](const std::string& name) { channel_.counts().add(name, -1); });
  if (in_everyone_) {
    rooms.remove_from_everyone(this);
    in_everyone_ = false;
  }
  channel_.connections.fetch_sub(1, std::memory_order_relaxed);
  if (channel_.hook_close.load(std::memory_order_relaxed)) {
    Event e(Event::Type::kClose);
    e.code = code;
    e.channel = channel_.index();
    e.client = id();
    e.data.assign(reason);
    channel_.sink().push(std::move(e));
  }
}

}  // namespace sidewire
