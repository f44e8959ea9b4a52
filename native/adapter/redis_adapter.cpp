// The cluster adapter over Redis pub/sub: one publishing and one subscribed connection per
// process, on the first I/O thread. Broadcasts are encoded and decoded here, off Node's thread;
// the request protocol (fetchSockets, serverSideEmit, broadcasts with acks...) needs JS's own
// state (socket.data, handlers), so its messages go to JS and JS publishes its answers.
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "adapter/cluster.hpp"
#include "adapter/redis_client.hpp"
#include "log.hpp"
#include "net/worker.hpp"

namespace sidewire::adapter {

namespace {

using nlohmann::json;

json reply_json(const redis::Reply* r) {
  if (!r) return json{{"error", "connection to Redis lost"}};
  switch (r->type) {
    case redis::Reply::Type::kString:
    case redis::Reply::Type::kStatus: return r->str;
    case redis::Reply::Type::kInteger: return r->integer;
    case redis::Reply::Type::kNil: return nullptr;
    case redis::Reply::Type::kError: return json{{"error", r->str}};
    case redis::Reply::Type::kArray: {
      json a = json::array();
      for (const auto& e : r->elements) a.push_back(reply_json(&e));
      return a;
    }
  }
  return nullptr;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

class RedisCluster final : public Cluster, public std::enable_shared_from_this<RedisCluster> {
 public:
  RedisCluster(Worker& home, ClusterConfig config, LocalTarget& target)
      : home_(home), config_(std::move(config)), target_(target) {
    endpoint_ = redis::Endpoint::parse_url(config_.url);  // throws std::invalid_argument
    if (config_.mode == "sharded") {
      sharded_ = true;
    } else if (config_.mode != "pubsub") {
      throw std::invalid_argument("unknown cluster adapter mode \"" + config_.mode + "\" (pubsub, sharded)");
    }
    if (config_.subscription_mode == "static") rooms_mode_ = ShardedRooms::kStatic;
    else if (config_.subscription_mode == "dynamic") rooms_mode_ = ShardedRooms::kDynamic;
    else if (config_.subscription_mode == "dynamic-private") rooms_mode_ = ShardedRooms::kDynamicPrivate;
    else throw std::invalid_argument("unknown subscriptionMode \"" + config_.subscription_mode + "\" (static, dynamic, dynamic-private)");
    sio_prefix_ = config_.key + "#";
    request_prefix_ = config_.key + "-request#";
    channel_prefix_ = config_.channel_key + "#";
    count_prefix_ = config_.channel_key + "-count#";
  }

  void start() override {
    auto self = shared_from_this();
    home_.command([self] { self->start_here(); });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    auto self = shared_from_this();
    home_.command([self] { self->stop_here(); });
  }

  void add_namespace(const std::string& nsp) override {
    on_home([nsp](RedisCluster& c) {
      if (!c.namespaces_.insert(nsp).second) return;
      if (c.sharded_) {
        // The namespace's channel, and this node's response channel in it.
        c.sub_->ssubscribe(c.sio_prefix_ + nsp + "#");
        c.sub_->ssubscribe(c.sio_prefix_ + nsp + "#" + c.config_.uid + "#");
        return;
      }
      c.sub_->psubscribe(c.config_.key + "#" + nsp + "#*");
      const std::string response = c.config_.key + "-response#" + nsp + "#";
      c.sub_->subscribe(c.config_.key + "-request#" + nsp + "#");
      c.sub_->subscribe(response);
      c.sub_->subscribe(response + c.config_.uid + "#");
    });
  }

  void add_channel(const std::string& path) override {
    on_home([path](RedisCluster& c) {
      if (!c.channels_.insert(path).second) return;
      // The relay's channel, and the room-count requests of the fleet (channel.count(room,
      // { cluster: true }), answered by JS) with this node's answers.
      const std::string count = c.count_prefix_ + path + "#";
      for (const std::string& name : {channel_channel(c.config_.channel_key, path), count, count + c.config_.uid + "#"}) {
        if (c.sharded_) c.sub_->ssubscribe(name);
        else c.sub_->subscribe(name);
      }
    });
  }

  void publish(SioBroadcast b) override {
    on_home([b = std::move(b)](RedisCluster& c) mutable {
      b.uid = c.config_.uid;
      std::string channel = c.sharded_ ? sharded_channel(c.config_.key, b, c.rooms_mode_) : sio_channel(c.config_.key, b);
      std::string payload;
      try {
        payload = c.sharded_ ? encode_cluster_broadcast(b) : encode_sio_broadcast(b);
      } catch (const std::exception& e) {
        log().error("cluster: broadcast to {} not published: {}", channel, e.what());
        return;
      }
      c.send_publish(std::move(channel), std::move(payload));
    });
  }

  void publish(ChannelBroadcast b) override {
    on_home([b = std::move(b)](RedisCluster& c) mutable {
      b.uid = c.config_.uid;
      c.send_publish(channel_channel(c.config_.channel_key, b.path), encode_channel_broadcast(b));
    });
  }

  void publish_raw(std::string channel, std::string payload) override {
    on_home([channel = std::move(channel), payload = std::move(payload)](RedisCluster& c) mutable {
      c.send_publish(std::move(channel), std::move(payload));
    });
  }

  void room_changed(const std::string& nsp, const std::string& room) override {
    if (!sharded_ || rooms_mode_ == ShardedRooms::kStatic) return;
    on_home([nsp, room](RedisCluster& c) {
      if (!c.namespaces_.count(nsp)) return;
      const bool wanted = c.target_.room_size(nsp, room) > 0;
      c.room_channel(nsp, room, wanted);
    });
  }

  // A socket's own room has a channel in dynamic-private mode; in dynamic mode too when its id
  // is not 20 characters long (sidewire's are 22), because publishers, socket.io's included, only
  // take a 20-character room for a socket id and send anything else on the room's channel.
  void socket_changed(const std::string& nsp, const std::string& sid, bool connected) override {
    if (!sharded_ || rooms_mode_ == ShardedRooms::kStatic) return;
    if (rooms_mode_ == ShardedRooms::kDynamic && sid.size() == 20) return;
    on_home([nsp, sid, connected](RedisCluster& c) {
      if (c.namespaces_.count(nsp)) c.room_channel(nsp, sid, connected);
    });
  }

  void command(std::uint64_t id, std::vector<std::string> args) override {
    on_home([id, args = std::move(args)](RedisCluster& c) mutable {
      // A question to the fleet gets no answer from a Redis that is away: say so at once rather
      // than queue it, so that a request (serverCount before fetchSockets) ends now.
      if (c.pub_->state() != redis::State::kReady) {
        c.reply(id, json{{"error", "Redis is not connected"}});
        return;
      }
      std::weak_ptr<RedisCluster> weak = c.shared_from_this();
      const bool queued = c.pub_->command(std::move(args), [weak, id](const redis::Reply* r) {
        if (auto self = weak.lock()) self->reply(id, reply_json(r));
      });
      if (!queued) c.reply(id, json{{"error", "Redis command dropped"}});
    });
  }

  ClusterStats stats() const override {
    ClusterStats s;
    s.configured = true;
    s.mode = sharded_ ? "sharded" : "pubsub";
    if (sharded_) s.subscription_mode = config_.subscription_mode;
    const auto pub = pub_state_.load(), sub = sub_state_.load();
    s.publisher = redis::state_name(pub);
    s.subscriber = redis::state_name(sub);
    s.state = combined(pub, sub);
    s.published = published_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.invalid = invalid_.load(std::memory_order_relaxed);
    s.pending_bytes = pending_bytes_.load(std::memory_order_relaxed);
    return s;
  }

  const std::string& uid() const override { return config_.uid; }

 private:
  static const char* combined(redis::State pub, redis::State sub) {
    using redis::State;
    if (pub == State::kClosed || sub == State::kClosed) return "closed";
    if (pub == State::kReady && sub == State::kReady) return "ready";
    if (pub == State::kDisconnected || sub == State::kDisconnected) return "disconnected";
    return "connecting";
  }

  template <typename F>
  void on_home(F&& f) {
    auto self = shared_from_this();
    home_.command([self, f = std::forward<F>(f)]() mutable {
      if (self->stopped_.load() || !self->pub_) return;
      f(*self);
    });
  }

  void start_here() {
    if (stopped_.load() || pub_) return;
    redis::ClientOptions options;
    options.endpoint = endpoint_;
    options.connect_timeout = std::chrono::milliseconds(config_.connect_timeout_ms);
    options.max_pending_bytes = config_.max_pending_bytes;
    options.name = "cluster publisher";
    pub_ = redis::Client::create(home_.io(), options);
    options.name = "cluster subscriber";
    sub_ = redis::Client::create(home_.io(), options);
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    pub_->on_state([weak](redis::State s, const std::string& why) {
      if (auto self = weak.lock()) self->on_state(true, s, why);
    });
    sub_->on_state([weak](redis::State s, const std::string& why) {
      if (auto self = weak.lock()) self->on_state(false, s, why);
    });
    sub_->on_message([weak](std::string_view, std::string_view, std::string_view channel, std::string_view payload) {
      if (auto self = weak.lock()) self->on_message(channel, payload);
    });
    log().info("cluster adapter: Redis at {}, key \"{}\", node {}", endpoint_.describe(), config_.key, config_.uid);
    pub_->start();
    sub_->start();
  }

  void stop_here() {
    if (pub_) pub_->close();
    if (sub_) sub_->close();
    pub_state_ = redis::State::kClosed;
    sub_state_ = redis::State::kClosed;
  }

  void on_state(bool publisher, redis::State s, const std::string& why) {
    const char* before = combined(pub_state_.load(), sub_state_.load());
    (publisher ? pub_state_ : sub_state_).store(s);
    reconnects_.store((pub_ ? pub_->stats().reconnects : 0) + (sub_ ? sub_->stats().reconnects : 0),
                      std::memory_order_relaxed);
    const char* after = combined(pub_state_.load(), sub_state_.load());
    if (std::string_view(before) == after) return;
    if (why.empty()) {
      log().log(std::string_view(after) == "ready" ? spdlog::level::info : spdlog::level::warn, "cluster adapter: {}",
                after);
    } else {
      log().log(std::string_view(after) == "ready" ? spdlog::level::info : spdlog::level::warn,
                "cluster adapter: {} ({} connection: {})", after, publisher ? "publisher" : "subscriber", why);
    }
    Event e(Event::Type::kClusterState);
    e.data = after;
    e.text = why;
    target_.to_js(std::move(e));
  }

  // A room's own channel (the sharded adapter's dynamic modes): subscribed while the room has
  // members here.
  void room_channel(const std::string& nsp, const std::string& room, bool wanted) {
    std::string channel = sio_prefix_ + nsp + "#" + room + "#";
    if (wanted) {
      if (room_channels_.insert(channel).second) sub_->ssubscribe(channel);
    } else if (room_channels_.erase(channel)) {
      sub_->sunsubscribe(channel);
    }
  }

  void send_publish(std::string channel, std::string payload) {
    const bool queued = pub_->command({sharded_ ? "SPUBLISH" : "PUBLISH", std::move(channel), std::move(payload)});
    if (queued) {
      published_.fetch_add(1, std::memory_order_relaxed);
    } else if (dropped_.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
      log().warn("cluster adapter: publish dropped ({} in all): {} bytes already waiting for Redis (while {})",
                 dropped_.load(), pub_->stats().pending_bytes, redis::state_name(pub_->state()));
    }
    pending_bytes_.store(pub_->stats().pending_bytes, std::memory_order_relaxed);
  }

  void reply(std::uint64_t id, const json& value) {
    Event e(Event::Type::kClusterReply);
    e.number = static_cast<std::int64_t>(id);
    e.data = value.dump(-1, ' ', false, json::error_handler_t::replace);
    target_.to_js(std::move(e));
  }

  void invalid(std::string_view channel, const std::string& error) {
    if (invalid_.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
      log().warn("cluster adapter: a message on {} that is not one: {} ({} in all)", channel, error, invalid_.load());
    }
  }

  void on_message(std::string_view channel, std::string_view payload) {
    pending_bytes_.store(pub_->stats().pending_bytes, std::memory_order_relaxed);
    std::string error;
    if (starts_with(channel, count_prefix_)) return forward(channel, payload, false);  // JS answers
    if (sharded_ && !starts_with(channel, channel_prefix_)) return on_cluster_message(channel, payload);
    if (starts_with(channel, sio_prefix_)) {
      SioBroadcast b;
      if (!decode_sio_broadcast(payload, b, error)) return invalid(channel, error);
      if (b.uid == config_.uid) return;
      received_.fetch_add(1, std::memory_order_relaxed);
      target_.deliver(std::move(b));
      return;
    }
    if (starts_with(channel, channel_prefix_)) {
      ChannelBroadcast b;
      if (!decode_channel_broadcast(payload, b, error)) return invalid(channel, error);
      if (b.uid == config_.uid) return;
      // The path is the channel's name between the prefix and the closing '#'.
      std::string_view path = channel.substr(channel_prefix_.size());
      if (!path.empty() && path.back() == '#') path.remove_suffix(1);
      b.path.assign(path);
      received_.fetch_add(1, std::memory_order_relaxed);
      target_.deliver(std::move(b));
      return;
    }
    const bool applied = starts_with(channel, request_prefix_) && apply_sockets_request(channel, payload);
    forward(channel, payload, applied);  // applied: JS then only updates its mirror
  }

  // A message for JS: its channel and payload, and whether the engine applied it already.
  void forward(std::string_view channel, std::string_view payload, bool applied) {
    Event e(Event::Type::kClusterMessage);
    e.code = applied ? 1 : 0;
    e.binary = true;
    e.text.assign(channel);
    e.data.assign(payload);
    target_.to_js(std::move(e));
  }

  // socket.io-adapter's ClusterAdapter message (the sharded adapter): a plain broadcast is
  // delivered here; socketsJoin/socketsLeave/disconnectSockets are applied here, in order among
  // the broadcasts, and JS hears of them (its mirror of socket.rooms); JS answers the rest.
  void on_cluster_message(std::string_view channel, std::string_view payload) {
    ClusterMessage m;
    std::string error;
    if (!decode_cluster_message(payload, m, error)) return invalid(channel, error);
    if (m.uid == config_.uid) return;  // this node's own, back from Redis
    if (m.type == static_cast<int>(ClusterType::kBroadcast) && !m.has_request_id) {
      received_.fetch_add(1, std::memory_order_relaxed);
      target_.deliver(std::move(m.broadcast));
      return;
    }
    bool applied = false;
    if (m.type >= static_cast<int>(ClusterType::kSocketsJoin) && m.type <= static_cast<int>(ClusterType::kDisconnectSockets)) {
      const auto op = m.type == static_cast<int>(ClusterType::kSocketsJoin)    ? LocalTarget::SocketsOp::kJoin
                    : m.type == static_cast<int>(ClusterType::kSocketsLeave) ? LocalTarget::SocketsOp::kLeave
                                                                             : LocalTarget::SocketsOp::kDisconnect;
      target_.sockets_op(m.nsp, op, std::move(m.rooms), std::move(m.except), std::move(m.targets), m.close);
      applied = true;
    }
    forward(channel, payload, applied);
  }

  // Request types 2-4 with a selection (the official adapter's REMOTE_JOIN, REMOTE_LEAVE,
  // REMOTE_DISCONNECT, as the emitter and socket.io nodes send them): applied on this thread,
  // in the order Redis delivered them among the broadcasts. JS still gets the message (its
  // mirror of socket.rooms). Small JSON only; the request of a sid alone is JS's.
  bool apply_sockets_request(std::string_view channel, std::string_view payload) {
    if (payload.empty() || payload.front() != '{' || payload.size() > 64 * 1024) return false;
    if (!json_depth_ok(payload, 8)) return false;
    const json j = json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    auto type = j.find("type");
    auto opts = j.find("opts");
    if (type == j.end() || !type->is_number_integer() || opts == j.end() || !opts->is_object()) return false;
    const std::int64_t t = type->get<std::int64_t>();
    if (t < 2 || t > 4) return false;
    if (auto uid = j.find("uid"); uid != j.end() && uid->is_string() && uid->get<std::string>() == config_.uid) {
      return false;
    }
    auto strings = [](const json& parent, const char* key) {
      std::vector<std::string> out;
      auto it = parent.find(key);
      if (it == parent.end() || !it->is_array()) return out;
      for (const auto& v : *it) {
        if (v.is_string()) out.push_back(v.get<std::string>());
        else if (v.is_number_integer()) out.push_back(std::to_string(v.get<std::int64_t>()));
      }
      return out;
    };
    std::string_view nsp = channel.substr(request_prefix_.size());
    if (!nsp.empty() && nsp.back() == '#') nsp.remove_suffix(1);
    const auto c = j.find("close");
    const auto op = t == 2 ? LocalTarget::SocketsOp::kJoin
                  : t == 3 ? LocalTarget::SocketsOp::kLeave
                           : LocalTarget::SocketsOp::kDisconnect;
    target_.sockets_op(std::string(nsp), op, strings(*opts, "rooms"), strings(*opts, "except"), strings(j, "rooms"),
                       c != j.end() && c->is_boolean() && c->get<bool>());
    return true;
  }

  Worker& home_;
  ClusterConfig config_;
  LocalTarget& target_;
  redis::Endpoint endpoint_;
  std::string sio_prefix_, channel_prefix_, request_prefix_, count_prefix_;
  std::shared_ptr<redis::Client> pub_, sub_;
  std::unordered_set<std::string> namespaces_, channels_, room_channels_;
  bool sharded_ = false;
  ShardedRooms rooms_mode_ = ShardedRooms::kDynamic;
  std::atomic<bool> stopped_{false};
  std::atomic<redis::State> pub_state_{redis::State::kConnecting}, sub_state_{redis::State::kConnecting};
  std::atomic<std::uint64_t> published_{0}, received_{0}, dropped_{0}, reconnects_{0}, invalid_{0}, pending_bytes_{0};
};

}  // namespace

std::shared_ptr<Cluster> make_redis_cluster(Worker& home, ClusterConfig config, LocalTarget& target) {
  auto cluster = std::make_shared<RedisCluster>(home, std::move(config), target);
  cluster->start();
  return cluster;
}

}  // namespace sidewire::adapter
