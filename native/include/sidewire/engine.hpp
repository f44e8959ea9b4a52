// The engine's public face: what the Node binding (and the native tests) may use.
// No Boost or Node types here, so that `binding/` stays glue and compiles fast.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sidewire {

// A connection's id: the I/O thread that owns it sits in the low 8 bits, so a command from JS
// is posted straight to that thread. Fits a JS number (< 2^53).
using ClientId = std::uint64_t;
inline unsigned worker_of(ClientId id) { return static_cast<unsigned>(id & 0xFF); }

// JWT authentication of a Socket.IO server or a raw channel (js/auth.js fills it in).
struct JwtOptions {
  bool enabled = false;
  std::vector<std::pair<std::string, std::string>> keys;  // kid ("" for any), secret or PEM
  std::vector<std::string> algorithms;                    // empty: what the keys can check
  std::string issuer;
  std::vector<std::string> audience;
  std::uint32_t clock_tolerance_s = 0;
  std::size_t max_token_bytes = 8192;
  bool require_exp = false;
  // Where the token is looked for, in order: "auth" (Socket.IO: the CONNECT's auth[auth_field]),
  // "query" (the handshake's query_param), "header" (Authorization: Bearer), "cookie" (cookie;
  // only when asked for: a browser sends cookies cross-site, WebSocket has no CORS).
  std::vector<std::string> from{"auth", "query", "header"};
  std::string auth_field = "token";
  std::string query_param = "token";
  std::string cookie = "token";
  std::string user_room_prefix = "user:";      // "": no room
  std::string refresh_event = "auth:refresh";  // Socket.IO; "": tokens are not refreshed
};

// Abuse limits of a Socket.IO server or a raw channel (js/limits.js checks and fills it in).
struct LimitsOptions {
  bool enabled = false;
  struct EventRate {
    std::string event;  // "*": every event not named (one bucket for all of them)
    std::uint32_t points = 0;
    std::uint32_t period_ms = 0;
  };
  std::vector<EventRate> events;  // token buckets per connection and event name
  std::string policy = "error";   // over a limit: "error" (dropped and told), "drop", "disconnect"
  std::string error_event = "error";  // Socket.IO: the event a throttled socket is told with
  std::uint32_t connections_per_ip = 0;    // 0: no cap
  std::uint32_t connections_per_user = 0;  // by the token's sub (auth.jwt)
  std::uint32_t connect_rate_points = 0;   // new connections per address per period
  std::uint32_t connect_rate_period_ms = 0;
  std::uint32_t idle_timeout_ms = 0;       // no application message from the client this long: closed
  // Proxies whose X-Forwarded-For / X-Real-IP name the client (addresses, CIDRs, "loopback", ...).
  std::vector<std::string> trust_proxy;
};

// A raw channel's room history (channels/history.hpp): what each room was sent, replayed in
// order to a client that joins later.
struct HistoryOptions {
  bool enabled = false;
  std::uint32_t max_messages = 1000;   // per room; past it the oldest go
  std::uint64_t max_bytes = 1u << 20;  // per room (frames as sent); past it the oldest go
  std::uint32_t ttl_ms = 0;            // entries older than this go (0: kept until pushed out)
  std::uint32_t max_rooms = 10000;     // rooms with a history; past it the least recently sent to goes
  std::vector<std::string> prefixes;   // only messages starting with one of these are kept (none: all)
  // 0: no compaction. Otherwise a room is handed to JS (Event::Type::kHistoryCompact) after this
  // many new messages, or half of max_bytes, since its last compaction.
  std::uint32_t compact_after = 0;
};

struct ChannelConfig {
  std::string path;                    // exact URL path, e.g. "/ws/fabric"
  std::string room_query;              // query key naming the room to join on connect ("" = none)
  bool relay = false;                  // every message goes to the other members of the sender's rooms
  bool join_messages = false;          // {"join":"room"} / {"leave":"room"} text frames handled natively
  std::uint64_t max_payload = 1 << 20; // bytes per message; larger gets close 1009
  std::uint32_t ping_interval_ms = 25000;  // 0 disables the heartbeat
  std::uint32_t ping_timeout_ms = 20000;
  std::size_t max_queued_bytes = 8u << 20;  // outgoing queue hard limit; past it the peer is dropped
  // Rooms one connection may be in; a join message past it closes the connection with 1008,
  // a join from JS past it is refused with a warning.
  std::uint32_t max_rooms = 1000;
  std::uint32_t message_timeout_ms = 30000;  // a fragmented message must be complete within this
  // An upgrade without a valid token is refused 401; the claims reach JS with the connection and
  // the client joins <user_room_prefix><sub>.
  JwtOptions jwt;
  LimitsOptions limits;
  HistoryOptions history;
};

// The parts of an HTTP upgrade request the engine needs. Node has already parsed it.
struct UpgradeRequest {
  std::string method;
  std::string target;  // path and query, as on the request line
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case
  std::string head;    // bytes Node read past the request head
  std::string remote_address;
  // Extra header lines for the 101 ("Name: value\r\n" each; Socket.IO's `headers` hooks and
  // `io.engine.use` middleware). A line with a stray CR or LF is dropped.
  std::string response_headers;
};

// An HTTP request JS handed over (Socket.IO's long-polling).
struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool too_large = false;  // the body passed the limit and was not read
  std::string remote_address;
};

struct Event {
  enum class Type : std::uint8_t {
    kOpen,      // a connection finished its handshake on `channel`; data = its token's claims
                // (auth.jwt), text = the client's address through trustProxy (when set)
    kMessage,   // `data` is the message; `binary` tells text from binary
    kClose,     // `code` and `data` (reason)
    kRefused,   // the upgrade was answered with HTTP status `code`; no connection was made
    kShutdown,  // Engine::shutdown finished: every connection is gone
    // Socket.IO (docs/binding-socketio.md)
    kHttpResponse,      // client = request id, code = status, text = headers JSON, data = body
    kSioConnect,        // client = socket, channel = nsp, data = auth JSON, text = socket info JSON
    kSioEvent,          // client = socket, channel = nsp, data = JSON array, number = ack id, attachments
    kSioAck,            // client = socket, channel = nsp, data = JSON array, number = ack id, attachments
    kSioDisconnect,     // client = socket, channel = nsp, data = reason, code = 1: kept for recovery
    kSioFetch,          // number = request id, data = JSON
    kSioBroadcastCount, // channel = nsp, number = ack id, client = recipients on one I/O thread
    kEioUpgrade,        // client = connection, data = transport name
    kEioClose,          // client = connection, data = reason
    // Engine::listen
    kHandoff,      // number = a connected socket's descriptor, for Node's HTTP server (now JS's);
                   // over native TLS (a socketpair): data = the client's address, code = 1
    kUpgradeInfo,  // client = the connection an upgrade the engine accepted itself will have,
                   // channel = its channel (UINT32_MAX: Socket.IO), text = the target,
                   // data = the remote address, CRLF, then the header lines as received
    // Engine.IO sessions, as engine.io's Server and Socket events (each only when JS asked)
    kEioOpen,             // client = connection, data = sid, text = transport name (SocketIoConfig::open_events)
    kEioPacket,           // client = connection, text = packet type, data = its data (binary: a Buffer)
    kEioPacketCreate,     // the same for a packet the session sends
    kEioHeartbeat,        // client = connection: a pong arrived
    kEioDrain,            // client = connection: queued packets went to the transport
    kEioUpgrading,        // client = connection, data = the transport being probed
    kEioConnectionError,  // an upgrade refused by Engine.IO's checks: client = its id, code = Engine.IO
                          // error code, text = target, data = remote address, CRLF, header lines
    // Socket.IO, continued
    kSioError,  // client = socket, data = the parser's message: the socket's 'error' event, before
                // the session closes for a protocol violation
    // The cluster adapter (Engine::cluster_start)
    kClusterMessage,  // text = the Redis channel, data = the payload (binary): the request protocol's
                      // requests and responses, which JS answers
    kClusterReply,    // number = the command's id, data = its reply as JSON
    kClusterState,    // data = the adapter's state ("ready", "connecting", "disconnected"), text = why
    // Raw channel history
    kHistoryCompact,  // channel, text = the room, number = upto and client = the room's version
                      // (Engine::history_replace's), attachments = the messages, data = one '0'
                      // (text) or '1' (binary) each
    // The I/O threads have been quiet for a while after a burst of connections (the moment the
    // engine hands its free heap back): JS may do the same with its own heap.
    kQuiet,
  };
  Event() = default;
  explicit Event(Type t) : type(t) {}
  Type type = Type::kOpen;
  bool binary = false;
  std::uint16_t code = 0;
  std::uint32_t channel = 0;
  ClientId client = 0;
  std::string data;
  std::string text;
  std::int64_t number = -1;
  std::vector<std::string> attachments;
};

// Receives events on I/O threads. The binding batches them into one call into JS per batch.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void push(Event event) = 0;
  // Several events at once, in order (the engine hands over what an I/O thread gathered in
  // one turn of its loop). Takes them; leaves `events` in an unspecified state.
  virtual void push_batch(std::vector<Event>& events) {
    for (Event& e : events) push(std::move(e));
  }
  // Backpressure: true while the consumer (JS) is so far behind that the engine should stop
  // reading from connections whose traffic becomes events. Any thread.
  virtual bool congested() const { return false; }
  // The engine's hook, called (any thread) when a congested sink has room again.
  void set_relief(std::function<void()> relief) { relief_ = std::move(relief); }

 protected:
  void relieved() const {
    if (relief_) relief_();
  }

 private:
  std::function<void()> relief_;
};

// Native TLS on Engine::listen's port (PEM text).
struct TlsOptions {
  std::string key;   // the private key
  std::string cert;  // the certificate, then its chain
  std::string ca;    // optional: CAs whose client certificates are asked for and checked
};

struct EngineOptions {
  unsigned io_threads = 1;
  std::uint32_t close_timeout_ms = 3000;  // how long a closing handshake may take before the TCP close
  // The I/O threads' niceness (0..19, Linux): above 0 the kernel favours the process's other
  // threads (Node's main thread rendering pages) when the CPUs are busy. Accepting is not niced.
  int io_nice = 0;
  // Coalesced writes: a connection's outgoing WebSocket frames wait up to this long (µs) so
  // that one sendmsg carries many of them (0: written after the handler that queued them).
  // Under fan-out it trades that much latency for far fewer syscalls per delivery.
  std::uint32_t write_delay_us = 0;
};

struct ChannelStats {
  std::string path;
  std::uint64_t connections = 0;
  std::vector<std::pair<std::string, std::uint64_t>> rooms;
  bool history = false;  // HistoryOptions::enabled; then the store's figures:
  std::uint64_t history_rooms = 0, history_messages = 0, history_bytes = 0;
  std::uint64_t history_dropped = 0, history_expired = 0, history_compactions = 0, history_rooms_evicted = 0;
};

struct EngineStats {
  std::uint64_t connections = 0;
  std::uint64_t connections_total = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t messages_delivered = 0;  // frames queued to recipients (a broadcast to N counts N)
  std::uint64_t upgrades_refused = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t backpressure_drops = 0;
  std::uint64_t heartbeat_timeouts = 0;
  std::uint64_t writes = 0;  // sendmsg calls (messages_delivered / writes = messages per syscall)
  std::uint64_t internal_errors = 0;         // exceptions caught on I/O threads (each closed its connection)
  std::uint64_t js_backpressure_pauses = 0;  // connections parked while JS was behind with events
  std::vector<std::pair<std::string, std::uint64_t>> limits;  // refusals by limit name
  std::uint64_t bytes_received = 0;  // socket bytes in and out (WebSocket; polling bodies)
  std::uint64_t bytes_sent = 0;
  std::uint64_t broadcasts = 0;            // from JS, from other nodes, channel relays
  std::uint64_t broadcast_recipients = 0;  // the connections they reached (fan-out in all)
  std::uint64_t sio_connects = 0;          // Socket.IO sockets that connected
  std::uint64_t channel_connects = 0;      // raw channel connections that opened
  // Disconnects by "<protocol>\0<reason>" (Socket.IO's reason, a channel's close code).
  std::vector<std::pair<std::string, std::uint64_t>> disconnects;
  std::vector<double> io_thread_cpu_seconds;  // per I/O thread: its busy time
  std::uint64_t sio_polling_sessions = 0;     // Engine.IO sessions by transport
  std::uint64_t sio_websocket_sessions = 0;
  std::vector<ChannelStats> channels;
};

struct SocketIoConfig {
  std::string path = "/socket.io/";
  std::uint32_t ping_interval_ms = 25000;
  std::uint32_t ping_timeout_ms = 20000;
  std::uint32_t connect_timeout_ms = 45000;
  std::uint32_t upgrade_timeout_ms = 10000;
  std::uint64_t max_http_buffer_size = 1000000;
  bool polling = true;
  bool websocket = true;
  bool allow_upgrades = true;
  bool dynamic_namespaces = false;
  bool hooks = false;  // kEioUpgrade / kEioClose wanted
  // Engine::listen: a WebSocket upgrade with an Origin header goes through JS (its CORS check)
  // instead of straight to the engine.
  bool cors_gate = false;
  // Engine::listen: every new session's upgrade goes through JS (an allowRequest hook).
  bool handshake_gate = false;
  // Engine::listen: every Engine.IO upgrade goes through JS (io.engine middleware, headers hooks).
  bool upgrade_gate = false;
  bool open_events = false;        // kEioOpen wanted (io.engine has 'connection' listeners)
  bool connection_errors = false;  // kEioConnectionError wanted (io.engine has 'connection_error' listeners)
  std::size_t max_queued_bytes = 8u << 20;  // per session, either transport
  std::uint32_t max_rooms = 10000;          // rooms one socket may be in
  bool msgpack = false;  // socket.io-msgpack-parser's encoding instead of the default parser's
  // connectionStateRecovery: off unless asked for; the window and the log's byte bound.
  bool recovery = false;
  std::uint32_t recovery_window_ms = 2 * 60 * 1000;
  std::size_t recovery_max_bytes = 32u << 20;
  // JWT authentication (auth.jwt): every CONNECT carries a token the engine verifies before JS
  // hears of the socket; the claims reach JS as socket.data.user, the socket joins
  // <user_room_prefix><sub>, and it is disconnected when the token expires unless it sent a fresh
  // one as <refresh_event>.
  JwtOptions jwt;
  // auth.namespaces: a namespace's own JWT authentication instead of `jwt` (enabled false: none
  // there). Their tokens are looked for where `jwt` looks (from, auth_field, query_param, cookie).
  std::vector<std::pair<std::string, JwtOptions>> jwt_namespaces;
  // Abuse limits: rates per socket and event, connection caps, the idle timeout, trustProxy.
  LimitsOptions limits;
  // permessage-deflate (RFC 7692) on the WebSocket transport: socket.io's perMessageDeflate,
  // ws's parameters. Off unless `enabled`.
  struct PerMessageDeflate {
    bool enabled = false;
    std::uint32_t threshold = 1024;  // smaller messages go out uncompressed
    int level = -1;                  // zlib level (-1: its default, 6), memLevel, strategy
    int mem_level = 8;
    int strategy = 0;
    // true: no context takeover, a broadcast is compressed once for all its compressed
    // recipients; false: context takeover (unless the client asks otherwise), a zlib stream
    // per connection.
    bool server_no_context_takeover = true;
    bool client_no_context_takeover = true;  // asked of every client: inflating needs no stream per connection
    int server_max_window_bits = 15;         // 9..15
    int client_max_window_bits = 0;          // 0: not limited, 8..15
  } per_message_deflate;
};

// What one Engine.IO session reports beyond its open and close (Engine::sio_watch): a bit per
// event of engine.io's Socket, set from JS while that session's socket.conn has a listener.
enum EioWatch : std::uint32_t {
  kWatchPacket = 1,        // kEioPacket
  kWatchPacketCreate = 2,  // kEioPacketCreate
  kWatchHeartbeat = 4,     // kEioHeartbeat
  kWatchDrain = 8,         // kEioDrain
  kWatchUpgrading = 16,    // kEioUpgrading
};

struct SocketIoStats {
  std::uint64_t sessions = 0;
  std::uint64_t sockets = 0;
  struct NamespaceStats {
    std::string name;
    std::uint64_t sockets = 0;
    std::vector<std::pair<std::string, std::uint64_t>> rooms;
  };
  std::vector<NamespaceStats> namespaces;
  struct Recovery {
    std::uint64_t sessions = 0, packets = 0, bytes = 0, recovered = 0, expired = 0, evicted = 0;
  } recovery;
};

// The cluster adapter: Redis pub/sub, wire-compatible with @socket.io/redis-adapter.
struct ClusterConfig {
  std::string url = "redis://127.0.0.1:6379";
  std::string key = "socket.io";                  // Socket.IO's channels: <key>#<nsp>#..., <key>-request#<nsp>#
  std::string channel_key = "sidewire-channel";   // raw channels': <channel_key>#<path>#
  std::string uid;                                // this node's id on the wire
  std::size_t max_pending_bytes = 8u << 20;       // publishes kept while Redis is away; past it dropped
  std::uint32_t connect_timeout_ms = 5000;
  // "pubsub": @socket.io/redis-adapter's createAdapter (PUBLISH/PSUBSCRIBE, its own messages).
  // "sharded": its createShardedAdapter (Redis 7's SPUBLISH/SSUBSCRIBE, socket.io-adapter's
  // ClusterAdapter messages); `key` is its channelPrefix then.
  std::string mode = "pubsub";
  std::string subscription_mode = "dynamic";  // sharded: "static", "dynamic", "dynamic-private"
  // "streams": @socket.io/redis-streams-adapter (`key` is its channelPrefix).
  std::string stream_name = "socket.io";
  std::uint32_t stream_count = 1;
  std::uint32_t max_len = 10000;         // XADD MAXLEN ~
  std::uint32_t read_count = 100;        // XREAD COUNT
  std::uint32_t block_ms = 5000;         // XREAD BLOCK
  std::string session_key_prefix = "sio:session:";
  bool sharded_pubsub = false;           // useShardedPubSub: SPUBLISH/SSUBSCRIBE for requests
};

struct ClusterStats {
  bool configured = false;
  std::string mode;       // "pubsub", "sharded", "streams"
  std::string subscription_mode;  // sharded: "static", "dynamic", "dynamic-private"
  std::string state;      // "ready" (both connections), "connecting", "disconnected", "closed"
  std::string publisher;  // each connection's own state
  std::string subscriber;
  std::string reader;     // streams: the connection that reads the stream
  std::uint64_t published = 0;      // messages handed to Redis (broadcasts, requests, responses)
  std::uint64_t received = 0;       // broadcasts from other nodes delivered here
  std::uint64_t dropped = 0;        // publishes lost: Redis away and the pending bound reached
  std::uint64_t reconnects = 0;
  std::uint64_t invalid = 0;        // messages from the fleet that did not decode
  std::uint64_t pending_bytes = 0;
};

class Engine {
 public:
  Engine(EngineOptions options, std::shared_ptr<EventSink> sink);
  ~Engine();  // stops and joins the I/O threads; connections are cut without a closing handshake
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Returns the channel's index. Paths are unique; a second add with the same path fails.
  std::optional<std::uint32_t> add_channel(ChannelConfig config);
  // Which events JS wants for a channel; events nobody listens to never cross into JS.
  void set_channel_hooks(std::uint32_t channel, bool open, bool message, bool close);

  // Takes ownership of `fd` (a connected, non-blocking TCP socket) and answers the upgrade:
  // 101 and a live connection, or an HTTP error (then a kRefused event). Returns the id the
  // connection will have. Never blocks: the work happens on the I/O thread.
  ClientId adopt(int fd, UpgradeRequest request);

  // The engine's own listening socket on the app's port, for a server that lets the engine
  // accept: an accept thread hands connections to the I/O threads, which peek at the request
  // head and take the WebSocket upgrades they can answer alone (a channel without a JS gate,
  // Socket.IO's websocket transport without a CORS check to run); every other connection goes to
  // JS untouched (a kHandoff event). `queues` listening sockets share the port (SO_REUSEPORT),
  // each with its own accept queue of `backlog`. Returns the port. Throws std::runtime_error.
  // `tls`: every connection is TLS (https, wss), ended by the engine (net/tls.hpp); throws
  // std::runtime_error for a key or certificate OpenSSL cannot use.
  std::uint16_t listen(const std::string& host, std::uint16_t port, int backlog, unsigned queues = 1,
                       const TlsOptions* tls = nullptr);
  // New TLS handshakes use these from now on; open connections keep theirs. Throws as listen.
  void reload_tls(const TlsOptions& tls);
  void stop_listening();
  // A channel whose upgrades JS must see first (an authorize hook): not taken by the listener.
  void set_channel_gate(std::uint32_t channel, bool gated);
  // A channel with a history to load (a load hook, a fleet): upgrades into a room the history
  // does not know go to JS first; known rooms are taken by the listener.
  void set_channel_history_gate(std::uint32_t channel, bool gated);
  bool history_known(std::uint32_t channel, const std::string& room) const;
  // JS loaded the room (or found nothing to load): later upgrades into it need no JS.
  void history_mark_known(std::uint32_t channel, const std::string& room);

  // Queues `payload` to every member of `room` on `channel` (all of the channel's connections
  // when room is empty), except `except` (0 = none). Encoded once for all recipients.
  void broadcast(std::uint32_t channel, const std::string& room, std::string payload, bool binary,
                 ClientId except = 0);
  void send(ClientId client, std::string payload, bool binary);
  void close(ClientId client, std::uint16_t code, std::string reason);
  void join(ClientId client, std::string room);
  void leave(ClientId client, std::string room);

  // Socket.IO (see docs/binding-socketio.md for the meaning of each call).
  void configure_socketio(SocketIoConfig config);
  ClientId socketio_request(std::uint64_t request_id, HttpRequest request);
  void socketio_request_aborted(std::uint64_t request_id);
  std::uint32_t sio_add_namespace(const std::string& name);
  void sio_set_namespace_hooks(std::uint32_t nsp, bool connect, bool events);
  // `turn` (emit, broadcast, accept): the turn of JS's event loop it comes from, 0 unknown;
  // a volatile packet is dropped by a transport that JS wrote to in the same turn.
  void sio_accept(ClientId socket, std::uint32_t nsp, std::uint32_t turn = 0);
  void sio_reject(ClientId socket, std::string data_json);
  // `nsp`: the socket's namespace, when known (connectionStateRecovery logs the packet at once).
  void sio_emit(ClientId socket, std::string data_json, std::vector<std::string> attachments, std::int64_t ack_id,
                bool is_volatile, std::uint32_t nsp = UINT32_MAX, bool compress = true, std::uint32_t turn = 0);
  void sio_ack(ClientId socket, std::int64_t ack_id, std::string data_json, std::vector<std::string> attachments,
               std::uint32_t turn = 0);
  struct SioSelection {
    std::uint32_t nsp = 0;
    std::vector<std::string> rooms;
    std::vector<std::string> except;
  };
  // `local`: this node's sockets only (socket.io's `local` flag); otherwise a cluster adapter
  // carries the broadcast to the other nodes too (not a broadcast with acks: JS's request).
  void sio_broadcast(SioSelection selection, std::string data_json, std::vector<std::string> attachments,
                     std::int64_t ack_id, bool is_volatile, bool compress = true, std::uint32_t turn = 0,
                     bool local = false);
  void sio_join(ClientId socket, std::vector<std::string> rooms);
  void sio_leave(ClientId socket, std::string room);
  void sio_disconnect(ClientId socket, bool close);
  // Closes every Engine.IO session at once, without DISCONNECT packets ("server shutting down").
  void sio_close_all();
  void sio_sockets_join(SioSelection selection, std::vector<std::string> rooms);
  void sio_sockets_leave(SioSelection selection, std::vector<std::string> rooms);
  void sio_disconnect_sockets(SioSelection selection, bool close);
  void sio_fetch_sockets(std::uint64_t request_id, SioSelection selection);
  SocketIoStats sio_stats() const;
  // Engine.IO sessions: which events one reports (EioWatch bits), closing one as engine.io's
  // socket.close() does ("forced close", after what is queued), and how many are open.
  void sio_watch(ClientId connection, std::uint32_t mask);
  void sio_close_session(ClientId connection);
  std::uint64_t sio_session_count() const;

  // The cluster adapter: one pair of Redis connections for the process, on the first I/O
  // thread. Throws std::invalid_argument for a URL it cannot use, std::logic_error when one is
  // already running. Socket.IO namespaces and channels join it one by one.
  void cluster_start(ClusterConfig config);
  void cluster_add_namespace(const std::string& nsp);
  void cluster_add_channel(std::uint32_t channel);
  void cluster_publish(std::string channel, std::string payload);
  void cluster_command(std::uint64_t id, std::vector<std::string> args);
  void cluster_stop();
  ClusterStats cluster_stats() const;

  // Room history (ChannelConfig::history). A message is a payload and whether it is binary.
  using HistoryMessages = std::vector<std::pair<std::string, bool>>;
  // Every entry of the room, the last sequence among them and the room's version (for
  // history_replace).
  HistoryMessages history(std::uint32_t channel, const std::string& room, std::uint64_t* upto = nullptr,
                          std::uint64_t* version = nullptr) const;
  // Puts `messages` in place of the room's entries up to `upto` (UINT64_MAX: all of them).
  // `version`: a compaction's snapshot (0: the app's own, unconditional). False when the
  // result was not taken: the room changed since, a thread is behind it, or it is too large.
  bool history_replace(std::uint32_t channel, const std::string& room, std::uint64_t upto, std::uint64_t version,
                       const HistoryMessages& messages);
  // The app's stored state in front of the room's entries (the load hook); false when the room
  // already has one.
  bool history_restore(std::uint32_t channel, const std::string& room, const HistoryMessages& messages);
  // A compaction JS could not finish: the room may be handed over again.
  void history_compaction_failed(std::uint32_t channel, const std::string& room);
  void history_sweep(std::uint32_t channel);

  std::uint64_t connection_count(std::uint32_t channel) const;
  std::uint64_t room_size(std::uint32_t channel, const std::string& room) const;
  // Every room of the channel with connections on this node, and how many.
  std::vector<std::pair<std::string, std::uint64_t>> room_sizes(std::uint32_t channel) const;
  EngineStats stats() const;

  // Stops taking connections, closes every connection with 1001, waits up to `drain` for the
  // outgoing queues and closing handshakes, cuts what is left, then pushes kShutdown.
  void shutdown(std::chrono::milliseconds drain);
  // Joins the I/O threads. Safe to call more than once.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Log level by name: trace, debug, info, warn, error, critical, off.
void set_log_level(const std::string& level);
// "text" (the default) or "json": one JSON object a line ({"time","level","logger","msg"}, and
// on a connection's lines "kind", "conn", "address" and "reason").
void set_log_format(const std::string& format);

}  // namespace sidewire
