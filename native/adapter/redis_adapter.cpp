// The cluster adapter over Redis pub/sub: one publishing and one subscribed connection per
// process, on the first I/O thread. Broadcasts are encoded and decoded here, off Node's thread;
// the request protocol (fetchSockets, serverSideEmit, broadcasts with acks...) needs JS's own
// state (socket.data, handlers), so its messages go to JS and JS publishes its answers.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>
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
    } else if (config_.mode == "streams") {
      streams_ = true;
      if (config_.stream_count == 0 || config_.stream_count > 1024) throw std::invalid_argument("streamCount must be 1 to 1024");
      if (config_.read_count == 0) throw std::invalid_argument("readCount must be at least 1");
      for (std::uint32_t i = 0; i < config_.stream_count; ++i) {
        streams_read_.push_back(config_.stream_count == 1 ? config_.stream_name : config_.stream_name + "-" + std::to_string(i));
      }
    } else if (config_.mode != "pubsub") {
      throw std::invalid_argument("unknown cluster adapter mode \"" + config_.mode + "\" (pubsub, sharded, streams)");
    }
    shard_pubsub_ = sharded_ || (streams_ && config_.sharded_pubsub);
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
      if (c.streams_) {
        // Requests to every node of the namespace, and answers to this one (pub/sub); the
        // stream is read for all namespaces at once.
        for (const std::string& name : {c.sio_prefix_ + nsp + "#", c.sio_prefix_ + nsp + "#" + c.config_.uid + "#"}) {
          if (c.shard_pubsub_) c.sub_->ssubscribe(name);
          else c.sub_->subscribe(name);
        }
        return;
      }
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
        if (c.shard_pubsub_) c.sub_->ssubscribe(name);
        else c.sub_->subscribe(name);
      }
    });
  }

  void publish(SioBroadcast b) override {
    if (streams_) {
      on_home([b = std::move(b)](RedisCluster& c) mutable { c.publish_stream(std::move(b)); });
      return;
    }
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
    s.mode = streams_ ? "streams" : sharded_ ? "sharded" : "pubsub";
    if (sharded_) s.subscription_mode = config_.subscription_mode;
    const auto pub = pub_state_.load(), sub = sub_state_.load();
    s.publisher = redis::state_name(pub);
    s.subscriber = redis::state_name(sub);
    s.state = combined(pub, sub);
    if (streams_) {
      const auto reader = reader_state_.load();
      s.reader = redis::state_name(reader);
      s.state = combined3(pub, sub, reader);
    }
    s.published = published_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.invalid = invalid_.load(std::memory_order_relaxed);
    s.pending_bytes = pending_bytes_.load(std::memory_order_relaxed);
    return s;
  }

  const std::string& uid() const override { return config_.uid; }

  bool keeps_sessions() const override { return streams_; }

  void restore_session(std::string nsp, std::string pid, std::string offset, std::size_t max_bytes,
                       std::function<void(std::optional<RestoredSession>)> done) override {
    if (!streams_) return done(std::nullopt);
    on_home([nsp = std::move(nsp), pid = std::move(pid), offset = std::move(offset), max_bytes,
             done = std::move(done)](RedisCluster& c) mutable {
      c.start_restore(std::move(nsp), std::move(pid), std::move(offset), max_bytes, std::move(done));
    });
  }

  void persist_session(StreamSession session, std::uint32_t ttl_ms) override {
    if (!streams_) return;
    on_home([session = std::move(session), ttl_ms](RedisCluster& c) {
      c.send_command({"SET", c.config_.session_key_prefix + session.pid, encode_session(session), "PX",
                      std::to_string(std::max<std::uint32_t>(ttl_ms, 1))});
    });
  }

 private:
  static const char* combined(redis::State pub, redis::State sub) {
    using redis::State;
    if (pub == State::kClosed || sub == State::kClosed) return "closed";
    if (pub == State::kReady && sub == State::kReady) return "ready";
    if (pub == State::kDisconnected || sub == State::kDisconnected) return "disconnected";
    return "connecting";
  }

  static const char* combined3(redis::State pub, redis::State sub, redis::State reader) {
    const char* two = combined(pub, sub);
    const char* with_reader = combined(reader, reader);
    for (const char* s : {"closed", "disconnected", "connecting"}) {
      if (std::string_view(two) == s || std::string_view(with_reader) == s) return s;
    }
    return "ready";
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
    if (streams_) {
      options.name = "cluster stream reader";
      reader_ = redis::Client::create(home_.io(), options);
      reader_->on_state([weak](redis::State s, const std::string& why) {
        if (auto self = weak.lock()) self->on_reader_state(s, why);
      });
      retry_timer_ = std::make_unique<boost::asio::steady_timer>(home_.io());
    }
    pub_->on_state([weak](redis::State s, const std::string& why) {
      if (auto self = weak.lock()) self->on_state(0, s, why);
    });
    sub_->on_state([weak](redis::State s, const std::string& why) {
      if (auto self = weak.lock()) self->on_state(1, s, why);
    });
    sub_->on_message([weak](std::string_view, std::string_view, std::string_view channel, std::string_view payload) {
      if (auto self = weak.lock()) self->on_message(channel, payload);
    });
    log().info("cluster adapter: Redis at {}, key \"{}\", node {}", endpoint_.describe(), config_.key, config_.uid);
    pub_->start();
    sub_->start();
    if (reader_) reader_->start();
  }

  void stop_here() {
    if (retry_timer_) retry_timer_->cancel();
    if (reader_) reader_->close();
    reader_state_ = redis::State::kClosed;
    if (pub_) pub_->close();
    if (sub_) sub_->close();
    pub_state_ = redis::State::kClosed;
    sub_state_ = redis::State::kClosed;
  }

  const char* state_now() const {
    return streams_ ? combined3(pub_state_.load(), sub_state_.load(), reader_state_.load())
                    : combined(pub_state_.load(), sub_state_.load());
  }

  void on_reader_state(redis::State s, const std::string& why) {
    on_state(2, s, why);
    if (s == redis::State::kReady && !reading_) start_reading();
  }

  // which: 0 the publisher, 1 the subscriber, 2 the stream reader.
  void on_state(int which, redis::State s, const std::string& why) {
    const char* before = state_now();
    (which == 0 ? pub_state_ : which == 1 ? sub_state_ : reader_state_).store(s);
    reconnects_.store((pub_ ? pub_->stats().reconnects : 0) + (sub_ ? sub_->stats().reconnects : 0) +
                          (reader_ ? reader_->stats().reconnects : 0),
                      std::memory_order_relaxed);
    const char* after = state_now();
    if (std::string_view(before) == after) return;
    const char* publisher = which == 0 ? "publisher" : which == 1 ? "subscriber" : "stream reader";
    if (why.empty()) {
      log().log(std::string_view(after) == "ready" ? spdlog::level::info : spdlog::level::warn, "cluster adapter: {}",
                after);
    } else {
      log().log(std::string_view(after) == "ready" ? spdlog::level::info : spdlog::level::warn,
                "cluster adapter: {} ({} connection: {})", after, publisher, why);
    }
    Event e(Event::Type::kClusterState);
    e.data = after;
    e.text = why;
    target_.to_js(std::move(e));
  }

  // ------------------------------------------------------------------ the streams adapter

  const std::string& stream_of(const std::string& nsp) {
    auto it = stream_names_.find(nsp);
    if (it == stream_names_.end()) {
      if (stream_names_.size() > 4096) stream_names_.clear();  // names of dynamic namespaces: bounded
      it = stream_names_.emplace(nsp, stream_name(config_.stream_name, config_.stream_count, nsp)).first;
    }
    return it->second;
  }

  // A plain broadcast goes into its namespace's stream. One that connection state recovery
  // keeps (deliver_here) is delivered here once Redis has given it its id, which its recipients
  // get as its offset, as socket.io's ClusterAdapter does; at once and without one when Redis
  // is away or refuses it (its XADD still waits, bounded, for Redis to come back).
  void publish_stream(SioBroadcast b) {
    b.uid = config_.uid;
    std::vector<std::string> args{"XADD", stream_of(b.nsp), "MAXLEN", "~", std::to_string(config_.max_len), "*"};
    try {
      for (auto& f : encode_stream_broadcast(b)) args.push_back(std::move(f));
    } catch (const std::exception& e) {
      log().error("cluster: broadcast to {} not added to the stream: {}", b.nsp, e.what());
      if (b.deliver_here) target_.deliver(std::move(b));
      return;
    }
    if (!b.deliver_here) {
      send_command(std::move(args));
      return;
    }
    if (pub_->state() != redis::State::kReady) {
      send_command(std::move(args));
      target_.deliver(std::move(b));
      return;
    }
    auto pending = std::make_shared<SioBroadcast>(std::move(b));
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    const bool queued = send_command(std::move(args), [weak, pending](const redis::Reply* r) {
      auto self = weak.lock();
      if (!self || self->stopped_.load()) return;
      if (r && r->type == redis::Reply::Type::kString) pending->offset = r->str;
      else if (r) log().warn("cluster adapter: XADD refused: {}", r->str);
      self->target_.deliver(std::move(*pending));
    });
    if (!queued) target_.deliver(std::move(*pending));
  }

  // The reader: XREAD BLOCK over every stream, from where it left off (across reconnects), or
  // from each stream's last entry when it first connects.
  void start_reading() {
    if (stopped_.load() || !reader_ || reading_) return;
    reading_ = true;
    if (!last_ids_.empty()) return read_next();
    auto ids = std::make_shared<std::vector<std::string>>(streams_read_.size(), "0-0");
    auto left = std::make_shared<std::size_t>(streams_read_.size());
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    for (std::size_t i = 0; i < streams_read_.size(); ++i) {
      const bool queued = reader_->command({"XREVRANGE", streams_read_[i], "+", "-", "COUNT", "1"},
                                           [weak, ids, left, i](const redis::Reply* r) {
        auto self = weak.lock();
        if (!self || self->stopped_.load()) return;
        if (!r) {  // lost: started again once the reader is back
          self->reading_ = false;
          return;
        }
        if (r->type == redis::Reply::Type::kArray && !r->elements.empty() &&
            r->elements[0].type == redis::Reply::Type::kArray && !r->elements[0].elements.empty() &&
            r->elements[0].elements[0].type == redis::Reply::Type::kString) {
          (*ids)[i] = r->elements[0].elements[0].str;
        }
        if (--*left == 0 && self->reading_) {
          for (std::size_t k = 0; k < ids->size(); ++k) self->last_ids_[self->streams_read_[k]] = (*ids)[k];
          self->read_next();
        }
      });
      if (!queued) {
        reading_ = false;
        return retry_reading();
      }
    }
  }

  void retry_reading() {
    if (!retry_timer_) return;
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    retry_timer_->expires_after(std::chrono::seconds(1));
    retry_timer_->async_wait([weak](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped_.load()) return;
      if (self->reader_->state() == redis::State::kReady) self->start_reading();
    });
  }

  void read_next() {
    std::vector<std::string> args{"XREAD", "BLOCK", std::to_string(config_.block_ms), "COUNT", std::to_string(config_.read_count),
                                  "STREAMS"};
    for (const auto& name : streams_read_) args.push_back(name);
    for (const auto& name : streams_read_) args.push_back(last_ids_[name]);
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    const bool queued = reader_->command(std::move(args), [weak](const redis::Reply* r) {
      if (auto self = weak.lock()) self->on_read(r);
    });
    if (!queued) {
      reading_ = false;
      retry_reading();
    }
  }

  void on_read(const redis::Reply* r) {
    if (stopped_.load()) return;
    if (!r) {
      reading_ = false;  // the connection went: on_reader_state starts again
      return;
    }
    if (r->type == redis::Reply::Type::kError) {
      log().warn("cluster adapter: XREAD failed: {}", r->str);
      reading_ = false;
      return retry_reading();
    }
    if (r->type == redis::Reply::Type::kArray) {
      for (const auto& stream : r->elements) {
        if (stream.type != redis::Reply::Type::kArray || stream.elements.size() != 2 ||
            stream.elements[0].type != redis::Reply::Type::kString || stream.elements[1].type != redis::Reply::Type::kArray) {
          continue;
        }
        auto last = last_ids_.find(stream.elements[0].str);
        for (const auto& entry : stream.elements[1].elements) {
          std::string id;
          StreamFields fields;
          if (!entry_fields(entry, id, fields)) continue;
          if (last != last_ids_.end()) last->second = id;
          on_stream_entry(id, fields);
        }
      }
    }
    read_next();
  }

  // [id, [field, value, ...]] (XREAD, XRANGE): false for anything else.
  static bool entry_fields(const redis::Reply& entry, std::string& id, StreamFields& fields) {
    using T = redis::Reply::Type;
    if (entry.type != T::kArray || entry.elements.size() != 2 || entry.elements[0].type != T::kString ||
        entry.elements[1].type != T::kArray) {
      return false;
    }
    id = entry.elements[0].str;
    const auto& kv = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
      if (kv[i].type != T::kString || kv[i + 1].type != T::kString) continue;
      const std::string& k = kv[i].str;
      if (k == "uid") fields.uid = kv[i + 1].str;
      else if (k == "nsp") fields.nsp = kv[i + 1].str;
      else if (k == "type") fields.type = kv[i + 1].str;
      else if (k == "data") fields.data = kv[i + 1].str;
    }
    return true;
  }

  // An entry of another node: a broadcast is delivered with its id as offset; socketsJoin,
  // socketsLeave and disconnectSockets are applied here, in the stream's order, and JS hears of
  // them as a ClusterAdapter message (its mirror of socket.rooms).
  void on_stream_entry(const std::string& id, const StreamFields& fields) {
    if (fields.nsp.empty()) return;  // not a message (the official adapter skips them too)
    ClusterMessage m;
    std::string error;
    if (!decode_stream_message(fields, m, error)) return invalid("the stream (entry " + id + ")", error);
    if (m.uid == config_.uid) return;
    if (m.type == static_cast<int>(ClusterType::kBroadcast) && !m.has_request_id) {
      received_.fetch_add(1, std::memory_order_relaxed);
      m.broadcast.offset = id;
      target_.deliver(std::move(m.broadcast));
      return;
    }
    const bool applied = apply_sockets_op(m);
    if (fields.data.empty() || fields.data.front() != '{') return;  // JS reads JSON entries only
    json message = json::object();
    message["uid"] = fields.uid;
    message["nsp"] = fields.nsp;
    message["type"] = m.type;
    message["data"] = json::parse(fields.data, nullptr, false);  // decoded once already: well formed
    forward(sio_prefix_ + fields.nsp + "#", message.dump(-1, ' ', false, json::error_handler_t::replace), applied);
  }

  // connectionStateRecovery across the fleet, as @socket.io/redis-streams-adapter restores a
  // session: GETDEL of the session and XRANGE of the offset itself (both must be there), then
  // XRANGE of what came after it, the namespace's broadcasts that addressed the session's rooms.
  struct Restore {
    std::string nsp, pid, offset, stream;
    std::size_t max_bytes = 0, bytes = 0;
    unsigned calls = 0;
    std::optional<StreamSession> session;
    std::vector<SioBroadcast> missed;
    std::function<void(std::optional<RestoredSession>)> done;
    void finish(bool ok) {
      auto d = std::move(done);
      done = nullptr;
      if (!d) return;
      if (!ok || !session) return d(std::nullopt);
      d(RestoredSession{std::move(*session), std::move(missed)});
    }
  };
  static constexpr std::size_t kRangeCount = 1000;
  static constexpr unsigned kMaxRangeCalls = 100;

  void start_restore(std::string nsp, std::string pid, std::string offset, std::size_t max_bytes,
                     std::function<void(std::optional<RestoredSession>)> done) {
    if (!valid_stream_offset(offset) || pub_->state() != redis::State::kReady) return done(std::nullopt);
    auto r = std::make_shared<Restore>();
    r->stream = stream_of(nsp);
    r->nsp = std::move(nsp);
    r->pid = std::move(pid);
    r->offset = std::move(offset);
    r->max_bytes = max_bytes;
    r->done = std::move(done);
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    const bool got = pub_->command({"GETDEL", config_.session_key_prefix + r->pid}, [r](const redis::Reply* reply) {
      if (!reply || reply->type != redis::Reply::Type::kString) return;
      StreamSession s;
      std::string error;
      if (decode_session(reply->str, s, error)) r->session = std::move(s);
      else log().info("cluster adapter: session {} unreadable: {}", r->pid, error);
    });
    const bool ranged = got && pub_->command({"XRANGE", r->stream, r->offset, r->offset}, [weak, r](const redis::Reply* reply) {
      auto self = weak.lock();
      if (!self || !reply || !r->session || reply->type != redis::Reply::Type::kArray || reply->elements.empty()) {
        return r->finish(false);  // no session, or its offset is no longer in the stream
      }
      self->range_after(r);
    });
    if (!ranged) r->finish(false);
  }

  void range_after(const std::shared_ptr<Restore>& r) {
    std::weak_ptr<RedisCluster> weak = shared_from_this();
    const bool queued = pub_->command(
        {"XRANGE", r->stream, next_stream_offset(r->offset), "+", "COUNT", std::to_string(kRangeCount)},
        [weak, r](const redis::Reply* reply) {
          auto self = weak.lock();
          if (!self || !reply || reply->type != redis::Reply::Type::kArray) return r->finish(false);
          for (const auto& entry : reply->elements) {
            std::string id;
            StreamFields fields;
            if (!entry_fields(entry, id, fields)) continue;
            r->offset = id;
            if (fields.nsp != r->nsp || fields.type != "3") continue;
            ClusterMessage m;
            std::string error;
            if (!decode_stream_message(fields, m, error) || m.has_request_id) continue;
            if (!includes_session(r->session->rooms, m.broadcast)) continue;
            r->bytes += m.broadcast.data_json.size() + id.size();
            for (const auto& a : m.broadcast.attachments) r->bytes += a.size();
            if (r->bytes > r->max_bytes) {
              log().info("cluster adapter: session {} missed more than {} bytes, connects as new", r->pid, r->max_bytes);
              return r->finish(false);
            }
            m.broadcast.offset = id;
            r->missed.push_back(std::move(m.broadcast));
          }
          if (reply->elements.size() < kRangeCount || ++r->calls >= kMaxRangeCalls) return r->finish(true);
          self->range_after(r);
        });
    if (!queued) r->finish(false);
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
    send_command({shard_pubsub_ ? "SPUBLISH" : "PUBLISH", std::move(channel), std::move(payload)});
  }

  // A publish, an XADD or a SET on the publishing connection, counted; false when dropped
  // (Redis away and the pending bound reached): its callback never runs then.
  bool send_command(std::vector<std::string> args, redis::Client::Callback cb = {}) {
    const bool queued = pub_->command(std::move(args), std::move(cb));
    if (queued) {
      published_.fetch_add(1, std::memory_order_relaxed);
    } else if (dropped_.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
      log().warn("cluster adapter: publish dropped ({} in all): {} bytes already waiting for Redis (while {})",
                 dropped_.load(), pub_->stats().pending_bytes, redis::state_name(pub_->state()));
    }
    pending_bytes_.store(pub_->stats().pending_bytes, std::memory_order_relaxed);
    return queued;
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
    // The streams adapter's pub/sub carries requests and answers only: JS's.
    if (streams_ && !starts_with(channel, channel_prefix_)) return forward(channel, payload, false);
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
    forward(channel, payload, apply_sockets_op(m));
  }

  // A socketsJoin, socketsLeave or disconnectSockets (ClusterAdapter types 4, 5, 6) applied here;
  // false for any other message.
  bool apply_sockets_op(ClusterMessage& m) {
    if (m.type < static_cast<int>(ClusterType::kSocketsJoin) || m.type > static_cast<int>(ClusterType::kDisconnectSockets)) {
      return false;
    }
    const auto op = m.type == static_cast<int>(ClusterType::kSocketsJoin)    ? LocalTarget::SocketsOp::kJoin
                  : m.type == static_cast<int>(ClusterType::kSocketsLeave) ? LocalTarget::SocketsOp::kLeave
                                                                           : LocalTarget::SocketsOp::kDisconnect;
    target_.sockets_op(m.nsp, op, std::move(m.rooms), std::move(m.except), std::move(m.targets), m.close);
    return true;
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
  bool streams_ = false;
  bool shard_pubsub_ = false;  // SPUBLISH/SSUBSCRIBE: the sharded adapter, or the streams adapter's useShardedPubSub
  std::shared_ptr<redis::Client> reader_;  // streams: XREAD BLOCK, a connection of its own
  std::vector<std::string> streams_read_;
  std::unordered_map<std::string, std::string> last_ids_;  // stream → the last id read (set once started)
  std::unordered_map<std::string, std::string> stream_names_;  // namespace → its stream
  bool reading_ = false;
  std::unique_ptr<boost::asio::steady_timer> retry_timer_;
  ShardedRooms rooms_mode_ = ShardedRooms::kDynamic;
  std::atomic<bool> stopped_{false};
  std::atomic<redis::State> pub_state_{redis::State::kConnecting}, sub_state_{redis::State::kConnecting},
      reader_state_{redis::State::kConnecting};
  std::atomic<std::uint64_t> published_{0}, received_{0}, dropped_{0}, reconnects_{0}, invalid_{0}, pending_bytes_{0};
};

}  // namespace

std::shared_ptr<Cluster> make_redis_cluster(Worker& home, ClusterConfig config, LocalTarget& target) {
  auto cluster = std::make_shared<RedisCluster>(home, std::move(config), target);
  cluster->start();
  return cluster;
}

}  // namespace sidewire::adapter
