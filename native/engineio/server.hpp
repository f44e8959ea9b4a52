// Engine.IO v4 on the engine's threads: sessions, the HTTP long-polling transport (requests
// handed over by JS, a held GET answered when data or the heartbeat comes), the WebSocket
// transport, the upgrade from polling, and the heartbeat. The protocol above (Socket.IO)
// hears about sessions through Listener.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engineio/ids.hpp"
#include "net/guard.hpp"
#include "net/worker.hpp"
#include "net/ws_connection.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::eio {

class Server;
class Session;

// Engine.IO's error codes and their messages (answered as 400 or 403 with a JSON body).
enum class Error : int {
  kUnknownTransport = 0,
  kUnknownSid = 1,
  kBadHandshakeMethod = 2,
  kBadRequest = 3,
  kForbidden = 4,
  kUnsupportedProtocolVersion = 5,
};
const char* error_message(Error e);
std::string error_body(Error e);

class Listener {
 public:
  virtual ~Listener() = default;
  virtual void on_message(Session& session, bool binary, std::string data) = 0;
  virtual void on_close(Session& session, std::string_view reason) = 0;
  // A session opened by this handshake request (its first GET, or its WebSocket upgrade): what
  // the protocol above may want of it later (Socket.IO's JWT reads a token from it).
  virtual void on_handshake(Session& session, std::string_view target,
                            const std::vector<std::pair<std::string, std::string>>& headers) {
    (void)session, (void)target, (void)headers;
  }
};

// Whatever the protocol above keeps per session.
struct UserData {
  virtual ~UserData() = default;
};

// The WebSocket transport of a session (or a probe during an upgrade).
class WsTransport final : public WsConnection {
 public:
  WsTransport(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, const WsSettings& settings,
              std::shared_ptr<Session> session);
  void detach() { session_.reset(); }
  std::string_view peer_address() const override;
  std::size_t queued() const { return queued_bytes(); }

 protected:
  void on_message(std::uint8_t opcode, std::string_view payload) override;
  void on_closed(std::uint16_t code, std::string_view reason) override;
  bool feeds_js() const override { return true; }  // Socket.IO packets may become events

 private:
  std::shared_ptr<Session> session_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Transport : std::uint8_t { kPolling, kWebSocket };

  Session(Server& server, Worker& worker, ClientId id, Transport transport);

  ClientId id() const { return id_; }
  Worker& worker() { return worker_; }
  Transport transport() const { return transport_; }
  const char* transport_name() const { return transport_ == Transport::kPolling ? "polling" : "websocket"; }
  bool is_open() const { return !closed_; }
  // Can a packet go out now (a held GET with nothing on its way yet, or a WebSocket that is not
  // waiting for its socket to drain)? For volatile emits.
  bool writable() const;
  // The turn of JS's event loop in which JS last sent something here (0: never): engine.io's
  // transport stays unwritable for the rest of a turn that wrote to it.
  std::uint32_t js_turn() const { return js_turn_; }
  void set_js_turn(std::uint32_t turn) { js_turn_ = turn; }

  // Queues one Engine.IO packet, framed as a WebSocket frame (polling unwraps it). `compress`:
  // the packet may be compressed (permessage-deflate, or the polling response's httpCompression).
  void send(const ws::SharedFrame& frame, bool compress = true);
  // Ends the session at once (errors, timeouts): a held GET gets the close packet, the sid is
  // forgotten.
  void close(std::string_view reason);
  // Ends it after what is queued went out (a server-side disconnect): a polling client still
  // fetches the queued packets and the close packet with its next GET.
  void close_gracefully(std::string_view reason);

  // The protocol above marks the session once it is in use (Socket.IO: a namespace connected);
  // a session left unmarked past connect_timeout is closed.
  void mark_established() { established_ = true; }
  // maxHttpBufferSize: the largest message (or polling body) this session accepts.
  std::uint64_t max_payload() const;

  std::unique_ptr<UserData> user;
  // Its admission under the server's limits (only when limits are set): the client's address,
  // counted until the session ends.
  std::unique_ptr<guard::Ticket> ticket;
  // The client's address (through trustProxy when set), for log lines.
  const std::string& address() const { return address_; }

 private:
  friend class Server;
  friend class WsTransport;

  void on_packet(char type, bool binary, std::string data);
  void on_ws_packet(WsTransport* from, std::uint8_t opcode, std::string_view payload);
  void on_ws_closed(WsTransport* from, bool error);
  void on_poll(std::uint64_t request_id);
  void on_post(std::uint64_t request_id, std::string_view body, bool too_large);
  void flush_poll();
  void on_closing_poll(bool was_held);
  void drop_probe(std::uint16_t code);
  void end_deferred_upgrade_close();
  void report_closed(std::string_view reason);
  void finish_upgrade();
  void tick(std::uint32_t now);
  void close_with(std::string_view reason, std::uint16_t ws_code, bool graceful);
  // engine.io's Socket events JS watches on this session (watch_: EioWatch bits, Server::watch).
  void report(Event::Type type, std::string data = {}, bool binary = false, std::string text = {});
  void report_packet(Event::Type type, const ws::SharedFrame& frame);

  Server& server_;
  Worker& worker_;
  ClientId id_;
  Transport transport_;
  std::string address_;
  std::shared_ptr<WsTransport> ws_;     // the WebSocket transport, once there is one
  std::shared_ptr<WsTransport> probe_;  // a WebSocket being probed for the upgrade
  std::vector<ws::SharedFrame> queue_;  // polling: packets waiting for a GET
  std::size_t queue_bytes_ = 0;         // and what they cost (Config::max_queued_bytes)
  std::uint64_t held_get_ = 0;          // polling: the request id of the GET being held
  std::uint32_t opened_at_ = 0;
  std::uint32_t ping_at_ = 0;           // when the last ping went out (or the session opened)
  std::uint32_t probe_at_ = 0;
  std::uint32_t closing_at_ = 0;
  bool awaiting_pong_ = false;
  bool ping_refreshed_ = false;  // a packet came while awaiting the pong: the timeout was extended once
  bool upgrading_ = false;   // the probe answered: polling only gets noops now
  bool established_ = false;
  bool closing_ = false;     // closed gracefully; a polling client has yet to fetch the close packet
  bool closed_ = false;
  bool flush_posted_ = false;
  bool client_asked_ = false;  // the client sent the close packet
  bool close_packet_sent_ = false;
  bool overflowed_ = false;  // polling: the queue passed its limit; the session is being dropped
  std::uint8_t watch_ = 0;   // EioWatch bits: events JS listens to on this session
  // Closed while the client was switching to the probe (it had its "3probe" and its GET was
  // released): the probe stays open until the client's upgrade packet, then closes with this code.
  std::uint16_t close_after_upgrade_ = 0;
  // polling: queued packets that may be compressed (engine.io compresses a response when one may)
  std::uint32_t queue_compressible_ = 0;
  std::uint32_t js_turn_ = 0;  // fits the padding after the flags
};

struct Config {
  std::string path = "/socket.io/";
  std::uint32_t ping_interval_ms = 25000;
  std::uint32_t ping_timeout_ms = 20000;
  std::uint32_t upgrade_timeout_ms = 10000;
  std::uint32_t connect_timeout_ms = 45000;
  std::uint64_t max_payload = 1000000;
  // Outgoing bytes a session may have waiting (WebSocket queue, or polling packets no GET has
  // fetched); past it the client is dropped as one that does not read.
  std::size_t max_queued_bytes = 8u << 20;
  bool polling = true;
  bool websocket = true;
  bool allow_upgrades = true;
  bool hooks = false;  // JS wants kEioUpgrade / kEioClose
  bool open_events = false;        // JS wants kEioOpen
  bool connection_errors = false;  // JS wants kEioConnectionError (refused upgrades)
  ws::DeflateOptions deflate;  // permessage-deflate on the WebSocket transport
  std::string secret_query_param;  // its values are blanked out of log lines (a JWT's ?token=)
  // limits / trustProxy: a new session is admitted under it (connectionsPerIp, connectRatePerIp).
  std::shared_ptr<const guard::Setup> guard;
};

class Server {
 public:
  Server(Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Listener& listener);
  ~Server();

  // The configuration as I/O thread `worker` sees it (read only on that thread).
  const Config& config(const Worker& worker) const { return per_worker_[worker.index()]->config; }
  // Any thread: the new configuration reaches each I/O thread through its command queue, in
  // order with everything else JS asked for; requests from JS are checked against it at once.
  void reconfigure(const Config& config);
  EventSink& sink() { return *sink_; }
  Listener& listener() { return listener_; }

  // Public ids (sid, socket.id): the numeric id encrypted (ids.hpp), base64url, 22 characters.
  // Unpredictable and unforgeable, yet decoding needs no table.
  std::string public_id(ClientId id, char tag) const;
  bool parse_public_id(std::string_view text, char tag, ClientId& id) const;

  // Is this request target ours (path and query)?
  bool owns(std::string_view target) const;
  // The I/O thread a request or upgrade for `target` must go to (its sid's), or -1 for any.
  int worker_for(std::string_view target) const;

  // A polling request from JS (any thread). Returns the new session's id for a handshake.
  ClientId handle_request(std::uint64_t request_id, HttpRequest request, ClientId new_id, unsigned worker);
  void request_aborted(std::uint64_t request_id);
  // Which events a session reports (EioWatch bits), and engine.io's socket.close() (any thread).
  void watch(ClientId id, std::uint32_t mask);
  void close_session(ClientId id);
  // A WebSocket upgrade under our path, already validated as WebSocket (on its I/O thread).
  void accept_websocket(Worker& worker, ClientId id, boost::asio::ip::tcp::socket socket,
                        const UpgradeRequest& request, const std::string& accept_key);

  std::shared_ptr<Session> find(Worker& worker, ClientId id);
  std::uint64_t session_count() const { return sessions_total_.load(); }
  std::uint64_t sessions_by_transport(bool websocket) const {
    const std::uint64_t all = sessions_total_.load(), ws = websocket_sessions_.load();
    const std::uint64_t w = ws > all ? all : ws;  // read apart: never more than all
    return websocket ? w : all - w;
  }
  // Every session, at once and without any Socket.IO goodbye (io.close(): clients reconnect).
  void close_all(std::string_view reason);
  // After the I/O threads have stopped (Engine::stop, on the calling thread): lets go of every
  // session and its transports, whose shared ownership of each other would otherwise keep
  // their sockets open for good.
  void release_all();

  // For Session:
  // `compressible`: a polling payload JS may compress (httpCompression), told to JS as number 1.
  void respond(std::uint64_t request_id, int status, std::string_view content_type, std::string body,
               bool compressible = false);
  // `refused`: the request failed Engine.IO's checks (engine.io's connection_error); the
  // event's `number` then carries the code (the answer crosses into JS anyway).
  void respond_error(std::uint64_t request_id, Error e, bool refused = false);
  // A handshake over the limits (connectionsPerIp, connectRatePerIp): counted, logged, and a 429.
  void refuse_admission(const guard::Admission& a, std::string_view peer);
  void respond_limited(std::uint64_t request_id, const guard::Admission& a);
  void forget(Session& session);
  void hold(Session& session, std::uint64_t request_id);
  void release(Session& session, std::uint64_t request_id);
  std::string open_packet(const Session& session) const;

 private:
  friend class Session;
  struct PerWorker {
    std::unordered_map<ClientId, std::shared_ptr<Session>> sessions;
    std::unordered_map<std::uint64_t, ClientId> held;  // held GET request id → session
    Config config;           // this thread's copy
    WsSettings ws_settings;  // its WebSocket transports' settings (they point here)
  };
  void on_request(Worker& worker, std::uint64_t request_id, HttpRequest request, ClientId new_id);
  void report_open(Session& session);
  static void apply(PerWorker& pw, const Config& config);
  Config front() const;

  std::vector<Worker*> workers_;
  std::shared_ptr<EventSink> sink_;
  Listener& listener_;
  std::vector<std::unique_ptr<PerWorker>> per_worker_;
  // The latest configuration, for the checks made on the calling thread (JS's, or the
  // listener's routing): the path, which transports exist.
  mutable std::mutex front_mutex_;
  Config front_;
  IdCipher ids_;
  std::atomic<std::uint64_t> sessions_total_{0};
  std::atomic<std::uint64_t> websocket_sessions_{0};  // of those, on the WebSocket transport
};

}  // namespace sidewire::eio
