#include "channels/channel.hpp"

#include <algorithm>
#include <limits>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "adapter/cluster.hpp"
#include "log.hpp"
#include "socketio/server.hpp"  // token_limit

namespace sidewire {

Channel::Channel(std::uint32_t index, ChannelConfig config, std::vector<Worker*> workers,
                 std::shared_ptr<EventSink> sink)
    : index_(index),
      config_(std::move(config)),
      workers_(std::move(workers)),
      sink_(std::move(sink)),
      rooms_(workers_.size()) {
  settings_.max_payload = config_.max_payload;
  settings_.ping_interval_ms = config_.ping_interval_ms;
  settings_.ping_timeout_ms = config_.ping_timeout_ms;
  settings_.max_queued_bytes = config_.max_queued_bytes;
  settings_.message_timeout_ms = config_.message_timeout_ms;
  settings_.idle_timeout_ms = config_.limits.enabled ? config_.limits.idle_timeout_ms : 0;
  if (config_.history.enabled) {
    history_ = std::make_unique<History>(config_.history);
    delivered_ = std::make_unique<std::atomic<std::uint64_t>[]>(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) delivered_[i].store(0);
  }
}

void Channel::publish_kept(const std::vector<std::string>& rooms, const ws::SharedFrame& frame, ClientId except,
                           bool keep) {
  auto names = std::make_shared<const std::vector<std::string>>(rooms);
  std::vector<History::Compaction> due = history_->record(
      *names, frame, keep, [this](const std::string& room) { return kept_room(room); },
      [&](std::uint64_t seq) {
        // Queued under the history's lock: every thread gets the kept messages in their order.
        for (Worker* w : workers_) {
          w->command([this, w, names, frame, except, seq] {
            // Marked even if the fan-out throws: a joiner must not be replayed it and get it again.
            struct Mark {
              std::atomic<std::uint64_t>& at;
              std::uint64_t seq;
              ~Mark() { at.store(seq, std::memory_order_release); }
            } mark{delivered_[w->index()], seq};
            broadcast_local(w->index(), *names, frame, except);
          });
        }
      });
  for (History::Compaction& c : due) {
    Event e(Event::Type::kHistoryCompact);
    e.channel = index_;
    e.text = std::move(c.room);
    e.number = static_cast<std::int64_t>(c.upto);
    e.client = c.version;
    e.attachments.reserve(c.frames.size());
    for (const ws::SharedFrame& f : c.frames) {
      bool binary = false;
      e.attachments.emplace_back(ws::frame_payload(*f, &binary));
      e.data.push_back(binary ? '1' : '0');
    }
    sink_->push(std::move(e));
  }
}

std::uint64_t Channel::delivered_everywhere() const {
  std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < workers_.size(); ++i) least = std::min(least, delivered_[i].load(std::memory_order_acquire));
  return least;
}

void Channel::broadcast_local(unsigned worker, const std::vector<std::string>& rooms, const ws::SharedFrame& frame,
                              ClientId except) {
  std::uint64_t reached = 0;
  rooms_.select(worker, rooms, {}, [&](ChannelClient& member) {
    if (member.id() == except) return;
    member.send(frame);
    ++reached;
  });
  workers_[worker]->metrics().broadcast_recipients.fetch_add(reached, std::memory_order_relaxed);
}

void Channel::relay(unsigned from, ChannelClient& sender, const ws::SharedFrame& frame) {
  Metrics& metrics = workers_[from]->metrics();
  metrics.broadcasts.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t reached = 0;
  rooms_.select_peers(from, &sender, [&](ChannelClient& member) {
    member.send(frame);
    ++reached;
  });
  metrics.broadcast_recipients.fetch_add(reached, std::memory_order_relaxed);
  if (workers_.size() < 2) return;
  auto names = std::make_shared<std::vector<std::string>>();
  names->reserve(ChannelRooms::room_count(sender));
  ChannelRooms::each_room(sender, [&](const std::string& name) { names->push_back(name); });
  for (Worker* w : workers_) {
    if (w->index() == from) continue;
    boost::asio::post(w->io(), [this, w, names, frame, except = sender.id()] {
      broadcast_local(w->index(), *names, frame, except);
    });
  }
}

ChannelClient::ChannelClient(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, Channel& channel)
    : WsConnection(worker, std::move(socket), id, channel.settings()), channel_(channel) {
  channel_.rooms().add(worker_.index(), this);
  in_everyone_ = true;
}

bool ChannelClient::feeds_js() const { return channel_.hook_message.load(std::memory_order_relaxed); }

bool ChannelClient::join(const std::string& room) {
  if (room.empty() || !open()) return false;
  switch (channel_.rooms().join(worker_.index(), this, room, channel_.config().max_rooms)) {
    case ChannelRooms::Joined::kJoined:
      if (started_) replay(room);
      return true;
    case ChannelRooms::Joined::kAlready: return false;
    case ChannelRooms::Joined::kTooMany:
      count_limit(worker_.metrics(), Limit::kRooms);
      log().warn("connection {} on {}: already in {} rooms, join of another refused", id(), channel_.config().path,
                 rooms_.size());
      return false;
  }
  return false;
}

void ChannelClient::replay(const std::string& room) {
  if (!channel_.kept_room(room)) return;
  for (const ws::SharedFrame& f : channel_.history()->replay(room, channel_.delivered(worker_.index()))) send(f);
}

void ChannelClient::on_started() {
  started_ = true;
  if (!channel_.history()) return;
  // The rooms joined on connect (the query's): their history, each message once.
  std::vector<const std::string*> seen;
  std::vector<ws::SharedFrame> frames;
  ChannelRooms::each_room(*this, [&](const std::string& name) {
    if (!channel_.kept_room(name)) return;
    for (ws::SharedFrame& f : channel_.history()->replay(name, channel_.delivered(worker_.index()))) {
      if (std::find(frames.begin(), frames.end(), f) == frames.end()) frames.push_back(std::move(f));
    }
  });
  for (const ws::SharedFrame& f : frames) send(f);
}

bool ChannelClient::leave(const std::string& room) { return channel_.rooms().leave(worker_.index(), this, room); }

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
    if (channel_.reserved_room(room)) {
      log().warn("connection {} on {}: join message for the reserved room {} ignored", id(), channel_.config().path, room);
      return true;
    }
    if (!join(room) && rooms_.size() >= channel_.config().max_rooms &&
        !channel_.rooms().is_member(worker_.index(), this, room)) {
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

bool ChannelClient::admit_message() {
  const guard::Setup& setup = *channel_.guard;
  if (!buckets_) buckets_ = std::make_unique<guard::Buckets>();
  const guard::Verdict v = buckets_->check(setup, setup.any, worker_.now_ms());
  if (v.pass) return true;
  count_limit(worker_.metrics(), Limit::kRateLimited);
  const guard::Rate& rate = setup.rules[static_cast<std::size_t>(setup.any)].rate;
  if (v.disconnect) {
    log_conn(spdlog::level::warn, "connection", id(), address_, "rate limited",
             "{}: messages over their limit ({} per {} ms), closing", channel_.config().path, rate.points, rate.period_ms);
    close(ws::kPolicyViolation, "rate limited");
  } else if (v.tell) {
    log_conn(spdlog::level::info, "connection", id(), address_, "rate limited",
             "{}: messages over their limit ({} per {} ms), dropped", channel_.config().path, rate.points, rate.period_ms);
    send_message(nlohmann::json{{"error", "rate limited"}, {"retryAfterMs", v.retry_after_ms}}.dump(), false);
  }
  return false;
}

void ChannelClient::set_token(std::string sub, std::string issuer, std::int64_t expires_at) {
  token_ = std::make_unique<Token>(Token{std::move(sub), std::move(issuer), expires_at, worker_.now_ms()});
}

void ChannelClient::on_timer(std::uint32_t now) {
  if (!token_ || token_->expires_at == 0 || now - token_->checked_at < 1000) return;
  token_->checked_at = now;
  const std::int64_t tolerance = channel_.jwt ? channel_.jwt->verifier.config().clock_tolerance_s : 0;
  if (auth::now_seconds() - tolerance < token_->expires_at) return;
  count_limit(worker_.metrics(), Limit::kTokenExpired);
  log_conn(spdlog::level::info, "connection", id(), address_, "token expired", "{}: token expired, closing", channel_.config().path);
  token_.reset();
  close(ws::kPolicyViolation, "token expired");
}

bool ChannelClient::handle_refresh(std::string_view payload) {
  // {"refresh":"<token>"} only: anything else is the application's.
  if (payload.size() > 16384 || payload.rfind("{\"refresh\":", 0) != 0) return false;
  const auto json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.size() != 1 || !json.begin()->is_string()) return false;
  auth::JwtResult r = channel_.jwt->verify_refresh(json.begin()->get<std::string>(), token_->sub, token_->issuer);
  nlohmann::json answer;
  if (r.ok()) {
    token_->expires_at = r.expires_at;
    answer = {{"refreshed", true}, {"exp", r.expires_at}};
  } else {
    count_limit(worker_.metrics(), sio::token_limit(r.reason));
    log_conn(spdlog::level::info, "connection", id(), address_, std::string("token ") + auth::reason_name(r.reason),
             "{}: token refresh refused ({})", channel_.config().path, r.detail);
    answer = {{"refreshed", false}, {"reason", auth::reason_name(r.reason)}, {"detail", r.detail}};
  }
  send_message(answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), false);
  return true;
}

void ChannelClient::on_message(std::uint8_t opcode, std::string_view payload) {
  const ChannelConfig& config = channel_.config();
  if (channel_.guard && channel_.guard->any >= 0 && !admit_message()) return;
  if (token_ && opcode == ws::kText && handle_refresh(payload)) return;
  if (config.join_messages && opcode == ws::kText && handle_join_message(payload)) return;
  if (config.relay && !rooms_.empty() && channel_.history()) {
    // Through the history's order, the sender's own thread included.
    worker_.metrics().broadcasts.fetch_add(1, std::memory_order_relaxed);
    const ws::SharedFrame frame = ws::make_shared_frame(opcode, payload);
    std::vector<std::string> names;
    names.reserve(rooms_.size());
    ChannelRooms::each_room(*this, [&](const std::string& name) { names.push_back(name); });
    channel_.publish_kept(names, frame, id(), channel_.history()->keeps(payload));
    if (adapter::Cluster* cluster = channel_.cluster.load(std::memory_order_acquire)) {
      adapter::ChannelBroadcast b;
      b.path = config.path;
      b.rooms = std::move(names);
      b.payload.assign(payload);
      b.binary = opcode == ws::kBinary;
      cluster->publish(std::move(b));
    }
  } else if (config.relay && !rooms_.empty()) {
    const ws::SharedFrame frame = ws::make_shared_frame(opcode, payload);  // framed once per message
    channel_.relay(worker_.index(), *this, frame);
    if (adapter::Cluster* cluster = channel_.cluster.load(std::memory_order_acquire)) {
      // One message for all its rooms: a member of several on another node gets it once too.
      adapter::ChannelBroadcast b;
      b.path = config.path;
      ChannelRooms::each_room(*this, [&](const std::string& name) { b.rooms.push_back(name); });
      b.payload.assign(payload);
      b.binary = opcode == ws::kBinary;
      cluster->publish(std::move(b));
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
  ticket_.reset();  // its address and user no longer count
  // By close code: the protocol's own one by one, the application's (3000-4999) as one.
  worker_.metrics().count_disconnect(
      "channel", code >= 3000 && code <= 4999 ? std::string("application") : code >= 1000 && code <= 1015 ? std::to_string(code) : "other");
  if (in_everyone_) {
    channel_.rooms().remove(worker_.index(), this);
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
