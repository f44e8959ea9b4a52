// node-addon-api glue: wraps sidewire::Engine for js/. No protocol logic lives here.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <atomic>
#include <iterator>
#include <cstring>
#include <limits>
#include <mutex>
#include <napi.h>
#include <vector>

#include "sidewire/engine.hpp"

namespace {

using sidewire::ClientId;
using sidewire::Event;

// The event pump. I/O threads push; the first push of a batch schedules one call into JS, which
// takes the events queued by then, at most kMaxEventsPerCall of them (the rest go in the next
// call, so one backlog never becomes one giant array and Node's loop runs in between). The
// bytes waiting are counted: past kHighWater the sink says it is congested and the engine
// stops reading from connections that feed JS, until JS is back under kLowWater.
class JsSink final : public sidewire::EventSink {
 public:
  static constexpr std::size_t kHighWater = 64u << 20;
  static constexpr std::size_t kLowWater = 16u << 20;
  static constexpr std::size_t kMaxEventsPerCall = 4096;

  void attach(Napi::Env env, Napi::Function callback) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "sidewire-events", 0, 1);
    tsfn_.Unref(env);  // an engine with no server around it must not keep Node alive
  }

  void push(Event event) override {
    std::lock_guard lock(mutex_);
    if (released_) return;
    add_bytes(cost(event));
    queue_.push_back(std::move(event));
    schedule();
  }

  void push_batch(std::vector<Event>& events) override {
    if (events.empty()) return;
    std::lock_guard lock(mutex_);
    if (released_) return;
    for (const Event& e : events) add_bytes(cost(e));
    if (queue_.empty()) {
      queue_.swap(events);
    } else {
      for (Event& e : events) queue_.push_back(std::move(e));
    }
    schedule();
  }

  bool congested() const override { return congested_.load(std::memory_order_relaxed); }

  void release() {
    std::lock_guard lock(mutex_);
    if (released_) return;
    released_ = true;
    tsfn_.Release();
  }

 private:
  static std::size_t cost(const Event& e) {
    std::size_t n = 96 + e.data.size() + e.text.size();
    for (const auto& a : e.attachments) n += a.size() + 32;
    return n;
  }

  void add_bytes(std::size_t n) {
    bytes_ += n;
    if (bytes_ > kHighWater) congested_.store(true, std::memory_order_relaxed);
  }

  void schedule() {
    if (scheduled_) return;
    scheduled_ = true;
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function fn) { deliver(env, fn); });
  }

  void deliver(Napi::Env env, Napi::Function fn) {
    std::vector<Event> batch;
    {
      std::lock_guard lock(mutex_);
      scheduled_ = false;
      if (queue_.size() <= kMaxEventsPerCall) {
        batch.swap(queue_);
      } else {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + kMaxEventsPerCall));
        queue_.erase(queue_.begin(), queue_.begin() + kMaxEventsPerCall);
        if (!released_) schedule();  // the rest, after Node has had its turn
      }
    }
    if (batch.empty()) return;
    std::size_t delivered = 0;
    for (const Event& e : batch) delivered += cost(e);
    // Whatever JS does with them, these bytes leave the backlog once the call returns.
    struct Settle {
      JsSink* sink;
      std::size_t bytes;
      ~Settle() { sink->settle(bytes); }
    } settle{this, delivered};
    // Flat, kFields per event: [type, channel, client, data, code, text, number, attachments]
    constexpr uint32_t kFields = 8;
    Napi::Array out = Napi::Array::New(env, batch.size() * kFields);
    uint32_t i = 0;
    for (Event& e : batch) {
      out.Set(i++, Napi::Number::New(env, static_cast<double>(e.type)));
      out.Set(i++, Napi::Number::New(env, e.channel == UINT32_MAX ? -1.0 : static_cast<double>(e.channel)));
      out.Set(i++, Napi::Number::New(env, static_cast<double>(e.client)));
      if (e.binary) {
        out.Set(i++, Napi::Buffer<char>::Copy(env, e.data.data(), e.data.size()));
      } else {
        out.Set(i++, Napi::String::New(env, e.data));
      }
      std::string().swap(e.data);
      out.Set(i++, Napi::Number::New(env, e.code));
      out.Set(i++, e.text.empty() ? env.Undefined() : Napi::String::New(env, e.text));
      out.Set(i++, Napi::Number::New(env, static_cast<double>(e.number)));
      if (e.attachments.empty()) {
        out.Set(i++, env.Undefined());
      } else {
        Napi::Array list = Napi::Array::New(env, e.attachments.size());
        for (uint32_t k = 0; k < e.attachments.size(); ++k) {
          list.Set(k, Napi::Buffer<char>::Copy(env, e.attachments[k].data(), e.attachments[k].size()));
        }
        out.Set(i++, list);
      }
    }
    batch.clear();
    fn.Call({out});
  }

  void settle(std::size_t bytes) {
    bool relief = false;
    {
      std::lock_guard lock(mutex_);
      bytes_ -= std::min(bytes, bytes_);
      if (congested_.load(std::memory_order_relaxed) && bytes_ < kLowWater) {
        congested_.store(false, std::memory_order_relaxed);
        relief = true;
      }
    }
    if (relief) relieved();
  }

  std::mutex mutex_;
  std::vector<Event> queue_;
  std::size_t bytes_ = 0;
  std::atomic<bool> congested_{false};
  bool scheduled_ = false;
  bool released_ = false;
  Napi::ThreadSafeFunction tsfn_;
};

// Text stays text, anything byte-like is sent as a binary message.
bool payload_of(const Napi::Value& v, std::string& out) {
  if (v.IsString()) {
    out = v.As<Napi::String>().Utf8Value();
    return false;
  }
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    out.assign(b.Data(), b.Length());
    return true;
  }
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    auto ab = t.ArrayBuffer();
    out.assign(static_cast<const char*>(ab.Data()) + t.ByteOffset(), t.ByteLength());
    return true;
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    out.assign(static_cast<const char*>(ab.Data()), ab.ByteLength());
    return true;
  }
  throw Napi::TypeError::New(v.Env(), "payload must be a string, Buffer, TypedArray or ArrayBuffer");
}

ClientId client_id(const Napi::Value& v) { return static_cast<ClientId>(v.As<Napi::Number>().DoubleValue()); }

std::vector<std::string> strings_of(const Napi::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

std::vector<std::string> buffers_of(const Napi::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    std::string bytes;
    payload_of(a.Get(i), bytes);
    out.push_back(std::move(bytes));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> raw_headers(const Napi::Value& v) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!v.IsArray()) return out;
  Napi::Array raw = v.As<Napi::Array>();
  for (uint32_t i = 0; i + 1 < raw.Length(); i += 2) {
    out.emplace_back(raw.Get(i).As<Napi::String>().Utf8Value(), raw.Get(i + 1).As<Napi::String>().Utf8Value());
  }
  return out;
}

std::int64_t int64_of(const Napi::Value& v, std::int64_t fallback = -1) {
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

bool bool_of(const Napi::Object& o, const char* key, bool fallback) {
  return o.Has(key) && !o.Get(key).IsUndefined() ? o.Get(key).ToBoolean().Value() : fallback;
}

// A size in bytes from JS: a positive number (Infinity and anything past 2^53 mean 2^53); 0,
// negative and NaN are refused rather than wrapped into a huge or a zero limit.
std::uint64_t bytes_of(const Napi::Object& o, const char* key, std::uint64_t fallback) {
  if (!o.Has(key) || !o.Get(key).IsNumber()) return fallback;
  const double d = o.Get(key).As<Napi::Number>().DoubleValue();
  if (!(d >= 1)) throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a positive number of bytes");
  constexpr double kMax = 9007199254740992.0;  // 2^53
  return d >= kMax ? static_cast<std::uint64_t>(kMax) : static_cast<std::uint64_t>(d);
}

std::uint32_t u32_of(const Napi::Object& o, const char* key, std::uint32_t fallback) {
  return o.Has(key) && o.Get(key).IsNumber() ? o.Get(key).As<Napi::Number>().Uint32Value() : fallback;
}

// JWT settings, already checked and their keys gathered by js/auth.js.
sidewire::JwtOptions jwt_of(const Napi::Object& j) {
  sidewire::JwtOptions t;
  t.enabled = true;
  const auto text = [&j](const char* key, std::string fallback) {
    return j.Has(key) && j.Get(key).IsString() ? j.Get(key).As<Napi::String>().Utf8Value() : fallback;
  };
  if (j.Has("keys") && j.Get("keys").IsArray()) {
    const Napi::Array keys = j.Get("keys").As<Napi::Array>();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const Napi::Object k = keys.Get(i).As<Napi::Object>();
      std::string material;
      payload_of(k.Get("key"), material);
      t.keys.emplace_back(k.Has("kid") && k.Get("kid").IsString() ? k.Get("kid").As<Napi::String>().Utf8Value() : "",
                          std::move(material));
    }
  }
  if (j.Has("algorithms")) t.algorithms = strings_of(j.Get("algorithms"));
  t.issuer = text("issuer", "");
  if (j.Has("audience")) t.audience = strings_of(j.Get("audience"));
  t.clock_tolerance_s = u32_of(j, "clockTolerance", t.clock_tolerance_s);
  t.max_token_bytes = static_cast<std::size_t>(bytes_of(j, "maxTokenBytes", t.max_token_bytes));
  t.require_exp = bool_of(j, "requireExp", t.require_exp);
  if (j.Has("from")) t.from = strings_of(j.Get("from"));
  t.auth_field = text("authField", t.auth_field);
  t.query_param = text("queryParam", t.query_param);
  t.cookie = text("cookie", t.cookie);
  t.user_room_prefix = text("userRoomPrefix", t.user_room_prefix);
  t.refresh_event = text("refreshEvent", t.refresh_event);
  return t;
}

// Limits, already checked by js/limits.js.
sidewire::LimitsOptions limits_of(const Napi::Object& l) {
  sidewire::LimitsOptions t;
  t.enabled = true;
  if (l.Has("events") && l.Get("events").IsArray()) {
    const Napi::Array events = l.Get("events").As<Napi::Array>();
    for (uint32_t i = 0; i < events.Length(); ++i) {
      const Napi::Object e = events.Get(i).As<Napi::Object>();
      t.events.push_back({e.Get("event").ToString().Utf8Value(), u32_of(e, "points", 0), u32_of(e, "periodMs", 0)});
    }
  }
  if (l.Has("policy") && l.Get("policy").IsString()) t.policy = l.Get("policy").As<Napi::String>().Utf8Value();
  if (l.Has("errorEvent") && l.Get("errorEvent").IsString()) t.error_event = l.Get("errorEvent").As<Napi::String>().Utf8Value();
  t.connections_per_ip = u32_of(l, "connectionsPerIp", 0);
  t.connections_per_user = u32_of(l, "connectionsPerUser", 0);
  if (l.Has("connectRate") && l.Get("connectRate").IsObject()) {
    const Napi::Object r = l.Get("connectRate").As<Napi::Object>();
    t.connect_rate_points = u32_of(r, "points", 0);
    t.connect_rate_period_ms = u32_of(r, "periodMs", 0);
  }
  t.idle_timeout_ms = u32_of(l, "idleTimeoutMs", 0);
  if (l.Has("trustProxy")) t.trust_proxy = strings_of(l.Get("trustProxy"));
  return t;
}

class EngineWrap final : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&EngineWrap::AddChannel>("addChannel"),
                           InstanceMethod<&EngineWrap::SetHooks>("setHooks"),
                           InstanceMethod<&EngineWrap::Adopt>("adopt"),
                           InstanceMethod<&EngineWrap::Listen>("listen"),
                           InstanceMethod<&EngineWrap::StopListening>("stopListening"),
                           InstanceMethod<&EngineWrap::ReloadTls>("reloadTls"),
                           InstanceMethod<&EngineWrap::SetChannelGate>("setChannelGate"),
                           InstanceMethod<&EngineWrap::SetChannelHistoryGate>("setChannelHistoryGate"),
                           InstanceMethod<&EngineWrap::HistoryKnown>("historyKnown"),
                           InstanceMethod<&EngineWrap::HistoryMarkKnown>("historyMarkKnown"),
                           InstanceMethod<&EngineWrap::Broadcast>("broadcast"),
                           InstanceMethod<&EngineWrap::Send>("send"),
                           InstanceMethod<&EngineWrap::Close>("close"),
                           InstanceMethod<&EngineWrap::Join>("join"),
                           InstanceMethod<&EngineWrap::Leave>("leave"),
                           InstanceMethod<&EngineWrap::ConnectionCount>("connectionCount"),
                           InstanceMethod<&EngineWrap::History>("history"),
                           InstanceMethod<&EngineWrap::ChannelRooms>("channelRooms"),
                           InstanceMethod<&EngineWrap::HistoryReplace>("historyReplace"),
                           InstanceMethod<&EngineWrap::HistoryRestore>("historyRestore"),
                           InstanceMethod<&EngineWrap::HistorySweep>("historySweep"),
                           InstanceMethod<&EngineWrap::HistoryCompactionFailed>("historyCompactionFailed"),
                           InstanceMethod<&EngineWrap::RoomSize>("roomSize"),
                           InstanceMethod<&EngineWrap::Stats>("stats"),
                           InstanceMethod<&EngineWrap::Shutdown>("shutdown"),
                           InstanceMethod<&EngineWrap::Stop>("stop"),
                           InstanceMethod<&EngineWrap::SioConfigure>("sioConfigure"),
                           InstanceMethod<&EngineWrap::SioAddNamespace>("sioAddNamespace"),
                           InstanceMethod<&EngineWrap::SioSetNamespaceHooks>("sioSetNamespaceHooks"),
                           InstanceMethod<&EngineWrap::SioRequest>("sioRequest"),
                           InstanceMethod<&EngineWrap::SioRequestAborted>("sioRequestAborted"),
                           InstanceMethod<&EngineWrap::SioAccept>("sioAccept"),
                           InstanceMethod<&EngineWrap::SioReject>("sioReject"),
                           InstanceMethod<&EngineWrap::SioEmit>("sioEmit"),
                           InstanceMethod<&EngineWrap::SioAck>("sioAck"),
                           InstanceMethod<&EngineWrap::SioBroadcast>("sioBroadcast"),
                           InstanceMethod<&EngineWrap::SioJoin>("sioJoin"),
                           InstanceMethod<&EngineWrap::SioLeave>("sioLeave"),
                           InstanceMethod<&EngineWrap::SioDisconnect>("sioDisconnect"),
                           InstanceMethod<&EngineWrap::SioCloseAll>("sioCloseAll"),
                           InstanceMethod<&EngineWrap::SioSocketsJoin>("sioSocketsJoin"),
                           InstanceMethod<&EngineWrap::SioSocketsLeave>("sioSocketsLeave"),
                           InstanceMethod<&EngineWrap::SioDisconnectSockets>("sioDisconnectSockets"),
                           InstanceMethod<&EngineWrap::SioFetchSockets>("sioFetchSockets"),
                           InstanceMethod<&EngineWrap::SioStats>("sioStats"),
                           InstanceMethod<&EngineWrap::SioWatch>("sioWatch"),
                           InstanceMethod<&EngineWrap::SioCloseSession>("sioCloseSession"),
                           InstanceMethod<&EngineWrap::SioSessionCount>("sioSessionCount"),
                           InstanceMethod<&EngineWrap::ClusterStart>("clusterStart"),
                           InstanceMethod<&EngineWrap::ClusterAddNamespace>("clusterAddNamespace"),
                           InstanceMethod<&EngineWrap::ClusterAddChannel>("clusterAddChannel"),
                           InstanceMethod<&EngineWrap::ClusterPublish>("clusterPublish"),
                           InstanceMethod<&EngineWrap::ClusterCommand>("clusterCommand"),
                           InstanceMethod<&EngineWrap::ClusterStop>("clusterStop"),
                       });
  }

  // new Engine({ ioThreads, closeTimeoutMs }, onEvents)
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "new Engine(options, onEvents)");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    sidewire::EngineOptions options;
    if (o.Has("ioThreads")) options.io_threads = o.Get("ioThreads").As<Napi::Number>().Uint32Value();
    if (o.Has("closeTimeoutMs")) options.close_timeout_ms = o.Get("closeTimeoutMs").As<Napi::Number>().Uint32Value();
    if (o.Has("ioNice") && o.Get("ioNice").IsNumber()) options.io_nice = o.Get("ioNice").As<Napi::Number>().Int32Value();
    if (o.Has("writeDelayUs") && o.Get("writeDelayUs").IsNumber()) {
      options.write_delay_us = o.Get("writeDelayUs").As<Napi::Number>().Uint32Value();
    }
    sink_ = std::make_shared<JsSink>();
    sink_->attach(env, info[1].As<Napi::Function>());
    engine_ = std::make_unique<sidewire::Engine>(options, sink_);
  }

  ~EngineWrap() override { Teardown(); }

 private:
  void Teardown() {
    if (engine_) engine_->stop();
    if (sink_) sink_->release();
  }

  sidewire::Engine& engine(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "the engine is stopped");
    return *engine_;
  }

  Napi::Value AddChannel(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    sidewire::ChannelConfig c;
    c.path = o.Get("path").As<Napi::String>().Utf8Value();
    if (o.Has("roomQuery") && o.Get("roomQuery").IsString()) c.room_query = o.Get("roomQuery").As<Napi::String>().Utf8Value();
    if (o.Has("relay")) c.relay = o.Get("relay").ToBoolean();
    if (o.Has("joinMessages")) c.join_messages = o.Get("joinMessages").ToBoolean();
    c.max_payload = bytes_of(o, "maxPayload", c.max_payload);
    if (o.Has("pingInterval")) c.ping_interval_ms = o.Get("pingInterval").As<Napi::Number>().Uint32Value();
    if (o.Has("pingTimeout")) c.ping_timeout_ms = o.Get("pingTimeout").As<Napi::Number>().Uint32Value();
    c.max_queued_bytes = static_cast<std::size_t>(bytes_of(o, "maxQueuedBytes", c.max_queued_bytes));
    c.max_rooms = u32_of(o, "maxRooms", c.max_rooms);
    c.message_timeout_ms = u32_of(o, "messageTimeout", c.message_timeout_ms);
    if (o.Has("jwt") && o.Get("jwt").IsObject()) c.jwt = jwt_of(o.Get("jwt").As<Napi::Object>());
    if (o.Has("limits") && o.Get("limits").IsObject()) c.limits = limits_of(o.Get("limits").As<Napi::Object>());
    if (o.Has("history") && o.Get("history").IsObject()) {
      // Checked by js/index.js.
      const Napi::Object h = o.Get("history").As<Napi::Object>();
      c.history.enabled = true;
      c.history.max_messages = u32_of(h, "maxMessages", c.history.max_messages);
      c.history.max_bytes = bytes_of(h, "maxBytes", c.history.max_bytes);
      c.history.ttl_ms = u32_of(h, "ttlMs", 0);
      c.history.max_rooms = u32_of(h, "maxRooms", c.history.max_rooms);
      c.history.compact_after = u32_of(h, "compactAfter", 0);
      if (h.Has("prefixes") && h.Get("prefixes").IsArray()) {
        const Napi::Array list = h.Get("prefixes").As<Napi::Array>();
        for (uint32_t i = 0; i < list.Length(); ++i) {
          std::string prefix;
          payload_of(list.Get(i), prefix);
          c.history.prefixes.push_back(std::move(prefix));
        }
      }
    }
    const std::string path = c.path;
    std::optional<std::uint32_t> index;
    try {
      index = engine(info.Env()).add_channel(std::move(c));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(info.Env(), std::string("sidewire: ") + e.what());
    }
    if (!index) throw Napi::Error::New(info.Env(), "a channel already exists at " + path + " (or too many channels)");
    return Napi::Number::New(info.Env(), *index);
  }

  // listen(host, port, backlog, queues) -> the bound port
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    const std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
    const auto port = static_cast<std::uint16_t>(info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0);
    const int backlog = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 511;
    const unsigned queues = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 1;
    // info[4]: { key, cert, ca } PEM text for TLS, or undefined.
    std::optional<sidewire::TlsOptions> tls;
    if (info.Length() > 4 && info[4].IsObject()) tls = tls_of(info[4].As<Napi::Object>());
    try {
      return Napi::Number::New(info.Env(), engine(info.Env()).listen(host, port, backlog, queues, tls ? &*tls : nullptr));
    } catch (const std::exception& err) {
      throw Napi::Error::New(info.Env(), err.what());
    }
  }

  // reloadTls({ key, cert, ca })
  void ReloadTls(const Napi::CallbackInfo& info) {
    try {
      engine(info.Env()).reload_tls(tls_of(info[0].As<Napi::Object>()));
    } catch (const std::exception& err) {
      throw Napi::Error::New(info.Env(), err.what());
    }
  }

  static sidewire::TlsOptions tls_of(const Napi::Object& o) {
    sidewire::TlsOptions t;
    payload_of(o.Get("key"), t.key);
    payload_of(o.Get("cert"), t.cert);
    if (o.Has("ca") && !o.Get("ca").IsUndefined() && !o.Get("ca").IsNull()) payload_of(o.Get("ca"), t.ca);
    return t;
  }

  void StopListening(const Napi::CallbackInfo& info) {
    if (engine_) engine_->stop_listening();
  }

  void SetChannelGate(const Napi::CallbackInfo& info) {
    engine(info.Env()).set_channel_gate(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean());
  }

  void SetChannelHistoryGate(const Napi::CallbackInfo& info) {
    engine(info.Env()).set_channel_history_gate(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean());
  }

  Napi::Value HistoryKnown(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), engine(info.Env()).history_known(info[0].As<Napi::Number>().Uint32Value(),
                                                                           info[1].As<Napi::String>().Utf8Value()));
  }

  void HistoryMarkKnown(const Napi::CallbackInfo& info) {
    engine(info.Env()).history_mark_known(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::String>().Utf8Value());
  }

  void SetHooks(const Napi::CallbackInfo& info) {
    engine(info.Env()).set_channel_hooks(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean(),
                                         info[2].ToBoolean(), info[3].ToBoolean());
  }

  // adopt(fd, method, target, rawHeaders, head, remoteAddress, responseHeaders) -> id
  // responseHeaders: extra "Name: value\r\n" lines for the 101 (Socket.IO), or undefined.
  // The descriptor is duplicated here, before the caller destroys Node's socket: the engine
  // owns the duplicate, Node closes its own.
  Napi::Value Adopt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int fd = info[0].As<Napi::Number>().Int32Value();
    sidewire::UpgradeRequest r;
    r.method = info[1].As<Napi::String>().Utf8Value();
    r.target = info[2].As<Napi::String>().Utf8Value();
    Napi::Array raw = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i + 1 < raw.Length(); i += 2) {
      r.headers.emplace_back(raw.Get(i).As<Napi::String>().Utf8Value(), raw.Get(i + 1).As<Napi::String>().Utf8Value());
    }
    if (info[4].IsBuffer()) {
      auto head = info[4].As<Napi::Buffer<char>>();
      r.head.assign(head.Data(), head.Length());
    }
    if (info.Length() > 5 && info[5].IsString()) r.remote_address = info[5].As<Napi::String>().Utf8Value();
    if (info.Length() > 6 && info[6].IsString()) r.response_headers = info[6].As<Napi::String>().Utf8Value();
    auto& e = engine(env);
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) throw Napi::Error::New(env, std::string("cannot duplicate the socket descriptor: ") + std::strerror(errno));
    return Napi::Number::New(env, static_cast<double>(e.adopt(own, std::move(r))));
  }

  // broadcast(channel, room, data, exceptId)
  void Broadcast(const Napi::CallbackInfo& info) {
    std::string payload;
    const bool binary = payload_of(info[2], payload);
    const ClientId except = info.Length() > 3 && info[3].IsNumber() ? client_id(info[3]) : 0;
    engine(info.Env()).broadcast(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::String>().Utf8Value(),
                                 std::move(payload), binary, except);
  }

  void Send(const Napi::CallbackInfo& info) {
    std::string payload;
    const bool binary = payload_of(info[1], payload);
    engine(info.Env()).send(client_id(info[0]), std::move(payload), binary);
  }

  void Close(const Napi::CallbackInfo& info) {
    const std::uint16_t code = info.Length() > 1 && info[1].IsNumber()
                                   ? static_cast<std::uint16_t>(info[1].As<Napi::Number>().Uint32Value())
                                   : 1000;
    std::string reason = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    engine(info.Env()).close(client_id(info[0]), code, std::move(reason));
  }

  void Join(const Napi::CallbackInfo& info) {
    engine(info.Env()).join(client_id(info[0]), info[1].As<Napi::String>().Utf8Value());
  }

  void Leave(const Napi::CallbackInfo& info) {
    engine(info.Env()).leave(client_id(info[0]), info[1].As<Napi::String>().Utf8Value());
  }

  // channelRooms(channel) -> [[room, count], ...]
  Napi::Value ChannelRooms(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto rooms = engine(env).room_sizes(info[0].As<Napi::Number>().Uint32Value());
    Napi::Array list = Napi::Array::New(env, rooms.size());
    for (uint32_t i = 0; i < rooms.size(); ++i) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::String::New(env, rooms[i].first));
      pair.Set(1u, Napi::Number::New(env, static_cast<double>(rooms[i].second)));
      list.Set(i, pair);
    }
    return list;
  }

  static sidewire::Engine::HistoryMessages history_messages(const Napi::Value& v) {
    sidewire::Engine::HistoryMessages messages;
    const Napi::Array list = v.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      std::string payload;
      const bool binary = payload_of(list.Get(i), payload);
      messages.emplace_back(std::move(payload), binary);
    }
    return messages;
  }

  // history(channel, room) -> { messages: [string | Buffer], upto, version }
  Napi::Value History(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::uint64_t upto = 0, version = 0;
    const auto messages = engine(env).history(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::String>().Utf8Value(),
                                              &upto, &version);
    Napi::Array list = Napi::Array::New(env, messages.size());
    for (uint32_t i = 0; i < messages.size(); ++i) {
      const auto& [payload, binary] = messages[i];
      if (binary) {
        list.Set(i, Napi::Buffer<char>::Copy(env, payload.data(), payload.size()));
      } else {
        list.Set(i, Napi::String::New(env, payload));
      }
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("messages", list);
    o.Set("upto", Napi::Number::New(env, static_cast<double>(upto)));
    o.Set("version", Napi::Number::New(env, static_cast<double>(version)));
    return o;
  }

  // historyReplace(channel, room, upto (-1: everything), version (0: the app's), messages) -> taken
  Napi::Value HistoryReplace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const double u = info[2].As<Napi::Number>().DoubleValue();
    const std::uint64_t upto = u < 0 ? std::numeric_limits<std::uint64_t>::max() : static_cast<std::uint64_t>(u);
    const auto version = static_cast<std::uint64_t>(info[3].As<Napi::Number>().DoubleValue());
    try {
      return Napi::Boolean::New(env, engine(env).history_replace(info[0].As<Napi::Number>().Uint32Value(),
                                                                 info[1].As<Napi::String>().Utf8Value(), upto, version,
                                                                 history_messages(info[4])));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("sidewire: ") + e.what());
    }
  }

  // historyRestore(channel, room, messages) -> taken
  Napi::Value HistoryRestore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      return Napi::Boolean::New(env, engine(env).history_restore(info[0].As<Napi::Number>().Uint32Value(),
                                                                 info[1].As<Napi::String>().Utf8Value(), history_messages(info[2])));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("sidewire: ") + e.what());
    }
  }

  void HistoryCompactionFailed(const Napi::CallbackInfo& info) {
    engine(info.Env()).history_compaction_failed(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::String>().Utf8Value());
  }

  void HistorySweep(const Napi::CallbackInfo& info) {
    if (engine_) engine_->history_sweep(info[0].As<Napi::Number>().Uint32Value());
  }

  Napi::Value ConnectionCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine(info.Env()).connection_count(info[0].As<Napi::Number>().Uint32Value())));
  }

  Napi::Value RoomSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine(info.Env()).room_size(
                                             info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::String>().Utf8Value())));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const sidewire::EngineStats s = engine(env).stats();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](std::uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    o.Set("connections", num(s.connections));
    o.Set("connectionsTotal", num(s.connections_total));
    o.Set("messagesReceived", num(s.messages_received));
    o.Set("messagesDelivered", num(s.messages_delivered));
    o.Set("upgradesRefused", num(s.upgrades_refused));
    o.Set("protocolErrors", num(s.protocol_errors));
    o.Set("backpressureDrops", num(s.backpressure_drops));
    o.Set("heartbeatTimeouts", num(s.heartbeat_timeouts));
    o.Set("writes", num(s.writes));
    o.Set("internalErrors", num(s.internal_errors));
    o.Set("jsBackpressurePauses", num(s.js_backpressure_pauses));
    Napi::Object limits = Napi::Object::New(env);
    for (const auto& [name, n] : s.limits) limits.Set(name, num(n));
    o.Set("limits", limits);
    o.Set("bytesReceived", num(s.bytes_received));
    o.Set("bytesSent", num(s.bytes_sent));
    o.Set("broadcasts", num(s.broadcasts));
    o.Set("broadcastRecipients", num(s.broadcast_recipients));
    Napi::Object connects = Napi::Object::New(env);
    connects.Set("socketio", num(s.sio_connects));
    connects.Set("channel", num(s.channel_connects));
    o.Set("connects", connects);
    // { socketio: { 'transport close': n, ... }, channel: { '1000': n, ... } }
    Napi::Object disconnects = Napi::Object::New(env);
    disconnects.Set("socketio", Napi::Object::New(env));
    disconnects.Set("channel", Napi::Object::New(env));
    for (const auto& [key, n] : s.disconnects) {
      const std::size_t nul = key.find('\0');
      const std::string protocol = key.substr(0, nul);
      if (!disconnects.Has(protocol)) disconnects.Set(protocol, Napi::Object::New(env));
      disconnects.Get(protocol).As<Napi::Object>().Set(nul == std::string::npos ? "" : key.substr(nul + 1), num(n));
    }
    o.Set("disconnects", disconnects);
    Napi::Array cpu = Napi::Array::New(env, s.io_thread_cpu_seconds.size());
    for (uint32_t i = 0; i < s.io_thread_cpu_seconds.size(); ++i) cpu.Set(i, Napi::Number::New(env, s.io_thread_cpu_seconds[i]));
    o.Set("ioThreadCpuSeconds", cpu);
    Napi::Object sessions = Napi::Object::New(env);
    sessions.Set("polling", num(s.sio_polling_sessions));
    sessions.Set("websocket", num(s.sio_websocket_sessions));
    o.Set("sessions", sessions);
    // The process's malloc (the engine, Node's C++ side): in use, and held from the system.
    const struct mallinfo2 mi = mallinfo2();
    o.Set("mallocInUse", num(mi.uordblks + mi.hblkhd));
    o.Set("mallocHeld", num(mi.arena + mi.hblkhd));
    Napi::Object channels = Napi::Object::New(env);
    for (const auto& c : s.channels) {
      Napi::Object co = Napi::Object::New(env);
      co.Set("connections", num(c.connections));
      Napi::Object rooms = Napi::Object::New(env);
      for (const auto& [name, n] : c.rooms) rooms.Set(name, num(n));
      co.Set("rooms", rooms);
      if (c.history) {
        Napi::Object h = Napi::Object::New(env);
        h.Set("rooms", num(c.history_rooms));
        h.Set("messages", num(c.history_messages));
        h.Set("bytes", num(c.history_bytes));
        h.Set("dropped", num(c.history_dropped));
        h.Set("expired", num(c.history_expired));
        h.Set("compactions", num(c.history_compactions));
        h.Set("roomsEvicted", num(c.history_rooms_evicted));
        co.Set("history", h);
      }
      channels.Set(c.path, co);
    }
    o.Set("channels", channels);
    const sidewire::ClusterStats cs = engine(env).cluster_stats();
    if (cs.configured) {
      Napi::Object a = Napi::Object::New(env);
      a.Set("type", Napi::String::New(env, "redis"));
      a.Set("mode", Napi::String::New(env, cs.mode));
      if (!cs.subscription_mode.empty()) a.Set("subscriptionMode", Napi::String::New(env, cs.subscription_mode));
      a.Set("state", Napi::String::New(env, cs.state));
      a.Set("publisher", Napi::String::New(env, cs.publisher));
      a.Set("subscriber", Napi::String::New(env, cs.subscriber));
      if (!cs.reader.empty()) a.Set("reader", Napi::String::New(env, cs.reader));
      a.Set("published", num(cs.published));
      a.Set("received", num(cs.received));
      a.Set("dropped", num(cs.dropped));
      a.Set("reconnects", num(cs.reconnects));
      a.Set("invalid", num(cs.invalid));
      a.Set("pendingBytes", num(cs.pending_bytes));
      o.Set("adapter", a);
    } else {
      o.Set("adapter", env.Null());
    }
    return o;
  }

  // clusterStart({ url, key, channelKey, uid, maxPendingBytes, connectTimeoutMs, mode, subscriptionMode,
  //                streamName, streamCount, maxLen, readCount, blockTimeInMs, sessionKeyPrefix, useShardedPubSub })
  void ClusterStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    sidewire::ClusterConfig c;
    auto str = [&](const char* key, std::string& out) {
      if (o.Has(key) && o.Get(key).IsString()) out = o.Get(key).As<Napi::String>().Utf8Value();
    };
    str("url", c.url);
    str("key", c.key);
    str("channelKey", c.channel_key);
    str("uid", c.uid);
    str("mode", c.mode);
    str("subscriptionMode", c.subscription_mode);
    c.max_pending_bytes = bytes_of(o, "maxPendingBytes", c.max_pending_bytes);
    c.connect_timeout_ms = u32_of(o, "connectTimeoutMs", c.connect_timeout_ms);
    str("streamName", c.stream_name);
    str("sessionKeyPrefix", c.session_key_prefix);
    c.stream_count = u32_of(o, "streamCount", c.stream_count);
    c.max_len = u32_of(o, "maxLen", c.max_len);
    c.read_count = u32_of(o, "readCount", c.read_count);
    c.block_ms = u32_of(o, "blockTimeInMs", c.block_ms);
    c.sharded_pubsub = o.Has("useShardedPubSub") && o.Get("useShardedPubSub").ToBoolean().Value();
    try {
      engine(env).cluster_start(std::move(c));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("sidewire: ") + e.what());
    } catch (const std::logic_error& e) {
      throw Napi::Error::New(env, std::string("sidewire: ") + e.what());
    }
  }

  void ClusterAddNamespace(const Napi::CallbackInfo& info) {
    engine(info.Env()).cluster_add_namespace(info[0].ToString().Utf8Value());
  }

  void ClusterAddChannel(const Napi::CallbackInfo& info) {
    engine(info.Env()).cluster_add_channel(info[0].As<Napi::Number>().Uint32Value());
  }

  // clusterPublish(channel, payload: string | Buffer)
  void ClusterPublish(const Napi::CallbackInfo& info) {
    std::string payload;
    payload_of(info[1], payload);
    engine(info.Env()).cluster_publish(info[0].ToString().Utf8Value(), std::move(payload));
  }

  // clusterCommand(id, [args...]): the reply comes as a cluster reply event
  void ClusterCommand(const Napi::CallbackInfo& info) {
    engine(info.Env()).cluster_command(static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue()),
                                       strings_of(info[1]));
  }

  void ClusterStop(const Napi::CallbackInfo& info) { engine(info.Env()).cluster_stop(); }

  void Shutdown(const Napi::CallbackInfo& info) {
    engine(info.Env()).shutdown(std::chrono::milliseconds(info[0].As<Napi::Number>().Int64Value()));
  }

  void Stop(const Napi::CallbackInfo&) {
    Teardown();
    engine_.reset();
  }

  // ------------------------------------------------------------------ Socket.IO

  void SioConfigure(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    sidewire::SocketIoConfig c;
    if (o.Has("path") && o.Get("path").IsString()) c.path = o.Get("path").As<Napi::String>().Utf8Value();
    c.ping_interval_ms = u32_of(o, "pingInterval", c.ping_interval_ms);
    c.ping_timeout_ms = u32_of(o, "pingTimeout", c.ping_timeout_ms);
    c.connect_timeout_ms = u32_of(o, "connectTimeout", c.connect_timeout_ms);
    c.upgrade_timeout_ms = u32_of(o, "upgradeTimeout", c.upgrade_timeout_ms);
    c.max_http_buffer_size = bytes_of(o, "maxHttpBufferSize", c.max_http_buffer_size);
    if (o.Has("transports") && o.Get("transports").IsArray()) {
      const auto t = strings_of(o.Get("transports"));
      c.polling = std::find(t.begin(), t.end(), "polling") != t.end();
      c.websocket = std::find(t.begin(), t.end(), "websocket") != t.end();
    }
    c.allow_upgrades = bool_of(o, "allowUpgrades", c.allow_upgrades);
    c.dynamic_namespaces = bool_of(o, "dynamicNamespaces", c.dynamic_namespaces);
    c.hooks = bool_of(o, "hooks", c.hooks);
    c.cors_gate = bool_of(o, "corsGate", c.cors_gate);
    c.handshake_gate = bool_of(o, "handshakeGate", c.handshake_gate);
    c.upgrade_gate = bool_of(o, "upgradeGate", c.upgrade_gate);
    c.open_events = bool_of(o, "openEvents", c.open_events);
    c.connection_errors = bool_of(o, "connectionErrors", c.connection_errors);
    c.max_rooms = u32_of(o, "maxRooms", c.max_rooms);
    c.max_queued_bytes = static_cast<std::size_t>(bytes_of(o, "maxQueuedBytes", c.max_queued_bytes));
    c.msgpack = bool_of(o, "msgpack", c.msgpack);
    c.recovery = bool_of(o, "recovery", c.recovery);
    c.recovery_window_ms = u32_of(o, "recoveryWindow", c.recovery_window_ms);
    c.recovery_max_bytes = static_cast<std::size_t>(bytes_of(o, "recoveryMaxBytes", c.recovery_max_bytes));
    if (o.Has("jwt") && o.Get("jwt").IsObject()) c.jwt = jwt_of(o.Get("jwt").As<Napi::Object>());
    if (o.Has("jwtNamespaces") && o.Get("jwtNamespaces").IsArray()) {
      // [{ name, jwt | null }], checked by js/auth.js
      const Napi::Array list = o.Get("jwtNamespaces").As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); ++i) {
        const Napi::Object n = list.Get(i).As<Napi::Object>();
        sidewire::JwtOptions j;  // disabled: no authentication there
        if (n.Get("jwt").IsObject()) j = jwt_of(n.Get("jwt").As<Napi::Object>());
        c.jwt_namespaces.emplace_back(n.Get("name").ToString().Utf8Value(), std::move(j));
      }
    }
    if (o.Has("limits") && o.Get("limits").IsObject()) c.limits = limits_of(o.Get("limits").As<Napi::Object>());
    if (o.Has("perMessageDeflate") && o.Get("perMessageDeflate").IsObject()) {
      // Already checked and filled in by js/socketio/compression.js.
      const Napi::Object d = o.Get("perMessageDeflate").As<Napi::Object>();
      const auto i32 = [&d](const char* key, int fallback) {
        return d.Has(key) && d.Get(key).IsNumber() ? d.Get(key).As<Napi::Number>().Int32Value() : fallback;
      };
      auto& p = c.per_message_deflate;
      p.enabled = true;
      p.threshold = u32_of(d, "threshold", p.threshold);
      p.level = i32("level", p.level);
      p.mem_level = i32("memLevel", p.mem_level);
      p.strategy = i32("strategy", p.strategy);
      p.server_no_context_takeover = bool_of(d, "serverNoContextTakeover", p.server_no_context_takeover);
      p.client_no_context_takeover = bool_of(d, "clientNoContextTakeover", p.client_no_context_takeover);
      p.server_max_window_bits = i32("serverMaxWindowBits", p.server_max_window_bits);
      p.client_max_window_bits = i32("clientMaxWindowBits", p.client_max_window_bits);
    }
    try {
      engine(info.Env()).configure_socketio(std::move(c));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(info.Env(), std::string("sidewire: ") + e.what());
    }
  }

  Napi::Value SioAddNamespace(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine(info.Env()).sio_add_namespace(info[0].As<Napi::String>().Utf8Value()));
  }

  void SioSetNamespaceHooks(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_set_namespace_hooks(info[0].As<Napi::Number>().Uint32Value(), info[1].ToBoolean(),
                                               info[2].ToBoolean());
  }

  // sioRequest(reqId, method, url, rawHeaders, body, tooLarge, remoteAddress) -> connId
  Napi::Value SioRequest(const Napi::CallbackInfo& info) {
    sidewire::HttpRequest r;
    r.method = info[1].As<Napi::String>().Utf8Value();
    r.target = info[2].As<Napi::String>().Utf8Value();
    r.headers = raw_headers(info[3]);
    if (info[4].IsBuffer() || info[4].IsString()) payload_of(info[4], r.body);
    r.too_large = info[5].ToBoolean();
    if (info.Length() > 6 && info[6].IsString()) r.remote_address = info[6].As<Napi::String>().Utf8Value();
    const auto id = engine(info.Env()).socketio_request(static_cast<std::uint64_t>(int64_of(info[0], 0)), std::move(r));
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  }

  void SioRequestAborted(const Napi::CallbackInfo& info) {
    engine(info.Env()).socketio_request_aborted(static_cast<std::uint64_t>(int64_of(info[0], 0)));
  }

  void SioAccept(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_accept(client_id(info[0]), info[1].As<Napi::Number>().Uint32Value(), uint32_or_0(info, 2));
  }

  void SioReject(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_reject(client_id(info[0]), info[1].As<Napi::String>().Utf8Value());
  }

  // An optional number argument (a JS turn, flags), 0 when absent.
  static std::uint32_t uint32_or_0(const Napi::CallbackInfo& info, std::size_t i) {
    return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Uint32Value() : 0;
  }

  // sioEmit(socketId, dataJson, attachments, ackId, flags, turn, nsp?): flags bit 0 volatile,
  // bit 1 compress(false); turn: the JS turn (volatile); nsp: the socket's namespace (recovery)
  void SioEmit(const Napi::CallbackInfo& info) {
    const std::uint32_t flags = uint32_or_0(info, 4);
    const std::uint32_t nsp = info.Length() > 6 && info[6].IsNumber() ? info[6].As<Napi::Number>().Uint32Value() : UINT32_MAX;
    engine(info.Env()).sio_emit(client_id(info[0]), info[1].As<Napi::String>().Utf8Value(), buffers_of(info[2]),
                                int64_of(info[3]), (flags & 1) != 0, nsp, (flags & 2) == 0, uint32_or_0(info, 5));
  }

  // sioAck(socketId, ackId, dataJson, attachments, turn?)
  void SioAck(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_ack(client_id(info[0]), int64_of(info[1]), info[2].As<Napi::String>().Utf8Value(),
                               buffers_of(info[3]), uint32_or_0(info, 4));
  }

  static sidewire::Engine::SioSelection selection_of(const Napi::CallbackInfo& info) {
    sidewire::Engine::SioSelection s;
    s.nsp = info[0].As<Napi::Number>().Uint32Value();
    s.rooms = strings_of(info[1]);
    s.except = strings_of(info[2]);
    return s;
  }

  // sioBroadcast(nsp, rooms, exceptRooms, dataJson, attachments, ackId, flags, turn)
  void SioBroadcast(const Napi::CallbackInfo& info) {
    const std::uint32_t flags = uint32_or_0(info, 6);
    engine(info.Env()).sio_broadcast(selection_of(info), info[3].As<Napi::String>().Utf8Value(), buffers_of(info[4]),
                                     int64_of(info[5]), (flags & 1) != 0, (flags & 2) == 0, uint32_or_0(info, 7),
                                     (flags & 4) != 0);
  }

  void SioJoin(const Napi::CallbackInfo& info) {
    std::vector<std::string> rooms = info[1].IsArray() ? strings_of(info[1])
                                                       : std::vector<std::string>{info[1].ToString().Utf8Value()};
    engine(info.Env()).sio_join(client_id(info[0]), std::move(rooms));
  }

  void SioLeave(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_leave(client_id(info[0]), info[1].ToString().Utf8Value());
  }

  void SioDisconnect(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_disconnect(client_id(info[0]), info[1].ToBoolean());
  }

  void SioCloseAll(const Napi::CallbackInfo& info) { engine(info.Env()).sio_close_all(); }

  void SioSocketsJoin(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_sockets_join(selection_of(info), strings_of(info[3]));
  }

  void SioSocketsLeave(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_sockets_leave(selection_of(info), strings_of(info[3]));
  }

  void SioDisconnectSockets(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_disconnect_sockets(selection_of(info), info[3].ToBoolean());
  }

  // sioFetchSockets(requestId, nsp, rooms, exceptRooms)
  void SioFetchSockets(const Napi::CallbackInfo& info) {
    sidewire::Engine::SioSelection s;
    s.nsp = info[1].As<Napi::Number>().Uint32Value();
    s.rooms = strings_of(info[2]);
    s.except = strings_of(info[3]);
    engine(info.Env()).sio_fetch_sockets(static_cast<std::uint64_t>(int64_of(info[0], 0)), std::move(s));
  }

  void SioWatch(const Napi::CallbackInfo& info) {
    engine(info.Env()).sio_watch(client_id(info[0]), info[1].As<Napi::Number>().Uint32Value());
  }

  void SioCloseSession(const Napi::CallbackInfo& info) { engine(info.Env()).sio_close_session(client_id(info[0])); }

  Napi::Value SioSessionCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine(info.Env()).sio_session_count()));
  }

  Napi::Value SioStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const sidewire::SocketIoStats s = engine(env).sio_stats();
    auto num = [&](std::uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    Napi::Object o = Napi::Object::New(env);
    o.Set("sessions", num(s.sessions));
    o.Set("sockets", num(s.sockets));
    Napi::Object nsps = Napi::Object::New(env);
    for (const auto& n : s.namespaces) {
      Napi::Object no = Napi::Object::New(env);
      no.Set("sockets", num(n.sockets));
      Napi::Object rooms = Napi::Object::New(env);
      for (const auto& [name, count] : n.rooms) rooms.Set(name, num(count));
      no.Set("rooms", rooms);
      nsps.Set(n.name, no);
    }
    o.Set("namespaces", nsps);
    Napi::Object r = Napi::Object::New(env);
    r.Set("sessions", num(s.recovery.sessions));
    r.Set("packets", num(s.recovery.packets));
    r.Set("bytes", num(s.recovery.bytes));
    r.Set("recovered", num(s.recovery.recovered));
    r.Set("expired", num(s.recovery.expired));
    r.Set("evicted", num(s.recovery.evicted));
    o.Set("recovery", r);
    return o;
  }

  std::shared_ptr<JsSink> sink_;
  std::unique_ptr<sidewire::Engine> engine_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("setLogLevel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                sidewire::set_log_level(info[0].As<Napi::String>().Utf8Value());
              }));
  exports.Set("setLogFormat", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                sidewire::set_log_format(info[0].As<Napi::String>().Utf8Value());
              }));
  return exports;
}

}  // namespace

NODE_API_MODULE(sidewire, Init)
