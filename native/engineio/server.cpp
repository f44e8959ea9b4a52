#include "engineio/server.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "engineio/packet.hpp"
#include "log.hpp"
#include "net/http_upgrade.hpp"

namespace sidewire::eio {

namespace asio = boost::asio;

namespace {
const ws::SharedFrame& text_frame(std::string_view payload) {
  // The few fixed packets, framed once for the life of the process.
  static const ws::SharedFrame ping = ws::make_shared_frame(ws::kText, "2");
  static const ws::SharedFrame pong = ws::make_shared_frame(ws::kText, "3");
  static const ws::SharedFrame noop = ws::make_shared_frame(ws::kText, "6");
  static const ws::SharedFrame close = ws::make_shared_frame(ws::kText, "1");
  static const ws::SharedFrame probe = ws::make_shared_frame(ws::kText, "3probe");
  if (payload == "2") return ping;
  if (payload == "3") return pong;
  if (payload == "6") return noop;
  if (payload == "1") return close;
  return probe;
}

// How long a gracefully closed polling session waits for the GET that fetches its close packet.
constexpr std::uint32_t c_closing_grace_ms = 5000;

std::string base64url(const std::uint8_t* data, std::size_t size) {
  std::string s = ws::base64_encode(data, size);
  for (char& c : s) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}
}  // namespace

const char* error_message(Error e) {
  switch (e) {
    case Error::kUnknownTransport: return "Transport unknown";
    case Error::kUnknownSid: return "Session ID unknown";
    case Error::kBadHandshakeMethod: return "Bad handshake method";
    case Error::kBadRequest: return "Bad request";
    case Error::kForbidden: return "Forbidden";
    case Error::kUnsupportedProtocolVersion: return "Unsupported protocol version";
  }
  return "Bad request";
}

std::string error_body(Error e) {
  return nlohmann::json{{"code", static_cast<int>(e)}, {"message", error_message(e)}}.dump();
}

// ---------------------------------------------------------------------------- WsTransport

WsTransport::WsTransport(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id,
                         const WsSettings& settings, std::shared_ptr<Session> session)
    : WsConnection(worker, std::move(socket), id, settings), session_(std::move(session)) {}

void WsTransport::on_message(std::uint8_t opcode, std::string_view payload) {
  if (auto s = session_) s->on_ws_packet(this, opcode, payload);
}

void WsTransport::on_closed(std::uint16_t code, std::string_view) {
  // A violation the WebSocket layer caught (oversized, bad UTF-8, bad framing) is a transport
  // error to Socket.IO; a close by the peer or a dropped TCP connection is a transport close.
  const bool error = code == ws::kProtocolError || code == ws::kInvalidPayload || code == ws::kMessageTooBig ||
                     code == ws::kPolicyViolation;
  if (auto s = std::move(session_)) s->on_ws_closed(this, error);
}

// ---------------------------------------------------------------------------- Session

Session::Session(Server& server, Worker& worker, ClientId id, Transport transport)
    : server_(server), worker_(worker), id_(id), transport_(transport) {
  opened_at_ = ping_at_ = worker_.now_ms();
}

bool Session::writable() const {
  if (closed_) return false;
  if (transport_ == Transport::kWebSocket) return ws_ && ws_->open() && ws_->queued() == 0;
  return held_get_ != 0;
}

void Session::send(const ws::SharedFrame& frame) {
  if (closed_) return;
  if (transport_ == Transport::kWebSocket) {
    if (ws_) ws_->send(frame);
    return;
  }
  queue_.push_back(frame);
  if (held_get_ && !flush_posted_) {
    // Coalesce what this turn of the loop sends into one response.
    flush_posted_ = true;
    asio::post(worker_.io(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      if (self->held_get_) self->flush_poll();
    });
  }
}

void Session::close(std::string_view reason) { close_with(reason, ws::kNormal, false); }

void Session::close_gracefully(std::string_view reason) { close_with(reason, ws::kNormal, true); }

void Session::close_with(std::string_view reason, std::uint16_t ws_code, bool graceful) {
  if (closed_) return;
  closed_ = true;
  if (probe_ && upgrading_ && !held_get_) {
    // The client has its "3probe" and is pausing polling: it listens to the probe for nothing
    // but the pong until it sends the upgrade packet, and a probe closed before then leaves it
    // paused on polling with no request open, deaf until its ping timeout (engine.io-client's
    // upgrade never resumes polling). Keep the probe until the upgrade packet, then close it:
    // by then it is the client's transport, and the close reaches it.
    close_after_upgrade_ = ws_code;
    closing_at_ = worker_.now_ms();
    probe_->set_closes_itself_on_drain(true);
    log().debug("session {} closed while upgrading: {}; closing once the upgrade completes", id_, reason);
    report_closed(reason);
    return;
  }
  drop_probe(ws_code);
  if (transport_ == Transport::kWebSocket) {
    if (ws_) {
      ws_->detach();
      ws_->close(ws_code, "");
      ws_.reset();
    }
    server_.forget(*this);
  } else {
    // Our close tells the client with a close packet; when the client asked, a noop just
    // releases its held GET (as engine.io does).
    // As engine.io: after an error the sid is gone at once and only a GET already held hears
    // of it; a graceful close keeps it until the client fetched what is queued and the close.
    // (Clients handle decoded packets a tick later than the close, so a graceful close sends
    // what is queued first and the close packet in the next response, as engine.io does.)
    if (graceful) {
      closing_ = true;
      closing_at_ = worker_.now_ms();
      if (held_get_) on_closing_poll();
    } else {
      if (held_get_) {
        queue_.push_back(text_frame(client_asked_ ? "6" : "1"));
        flush_poll();
      }
      server_.forget(*this);
    }
  }
  log().debug("session {} closed: {}", id_, reason);
  report_closed(reason);
}

// Tells the Socket.IO layer, and JS when it listens, that the session is gone.
void Session::report_closed(std::string_view reason) {
  server_.listener().on_close(*this, reason);
  if (server_.config().hooks) {
    Event e(Event::Type::kEioClose);
    e.client = id_;
    e.data.assign(reason);
    server_.sink().push(std::move(e));
  }
}

void Session::on_packet(char type, bool binary, std::string data) {
  switch (type) {
    case kMessage:
      server_.listener().on_message(*this, binary, std::move(data));
      return;
    case kPong:
      awaiting_pong_ = false;
      ping_at_ = worker_.now_ms();
      return;
    case kPing:  // clients of older revisions ping; answer as the server did then
      send(ws::make_shared_frame(ws::kText, "3" + data));
      return;
    case kClose:
      client_asked_ = true;
      close("transport close");
      return;
    case kNoop:
      return;
    default:
      log().warn("session {}: unexpected packet type '{}', closing", id_, type);
      close("parse error");
  }
}

// Closes the WebSocket being probed (if any) without it reporting back to this session.
void Session::drop_probe(std::uint16_t code) {
  if (!probe_) return;
  probe_->detach();
  probe_->close(code, "");
  probe_.reset();
}

void Session::end_deferred_upgrade_close() {
  const std::uint16_t code = close_after_upgrade_;
  close_after_upgrade_ = 0;
  upgrading_ = false;
  drop_probe(code);
  server_.forget(*this);
}

void Session::on_ws_packet(WsTransport* from, std::uint8_t opcode, std::string_view payload) {
  const bool is_probe = probe_ && from == probe_.get();
  if (closed_) {
    if (is_probe && close_after_upgrade_ && opcode == ws::kText && !payload.empty() && payload[0] == kUpgrade) {
      log().debug("session {}: upgrade completed after the close, closing the websocket", id_);
      end_deferred_upgrade_close();
    }
    return;
  }
  if (opcode == ws::kBinary) {
    if (!is_probe) on_packet(kMessage, true, std::string(payload));
    return;
  }
  if (payload.empty() || !is_valid_type(payload[0])) {
    log().warn("session {}: malformed packet over websocket, closing", id_);
    if (is_probe) {
      drop_probe(ws::kProtocolError);
    } else {
      close("parse error");
    }
    return;
  }
  const char type = payload[0];
  const std::string_view data = payload.substr(1);
  if (is_probe) {
    if (type == kPing && data == "probe") {
      probe_->send(text_frame("3probe"));
      upgrading_ = true;
      // Release the held GET so the client can pause polling and send the upgrade packet.
      if (held_get_) {
        queue_.push_back(text_frame("6"));
        flush_poll();
      }
    } else if (type == kUpgrade && upgrading_) {
      finish_upgrade();
    }
    return;
  }
  on_packet(type, false, std::string(data));
}

void Session::finish_upgrade() {
  ws_ = std::move(probe_);
  transport_ = Transport::kWebSocket;
  upgrading_ = false;
  for (const auto& f : queue_) ws_->send(f);
  queue_.clear();
  std::vector<ws::SharedFrame>().swap(queue_);
  if (held_get_) {
    queue_.push_back(text_frame("6"));
    flush_poll();
    queue_.clear();
  }
  log().debug("session {} upgraded to websocket", id_);
  if (server_.config().hooks) {
    Event e(Event::Type::kEioUpgrade);
    e.client = id_;
    e.data = "websocket";
    server_.sink().push(std::move(e));
  }
}

void Session::on_ws_closed(WsTransport* from, bool error) {
  if (probe_ && from == probe_.get()) {
    probe_.reset();
    upgrading_ = false;
    if (close_after_upgrade_) {
      close_after_upgrade_ = 0;
      server_.forget(*this);
    }
    return;
  }
  if (ws_ && from == ws_.get()) {
    ws_.reset();
    close(error ? "transport error" : "transport close");
  }
}

void Session::on_poll(std::uint64_t request_id) {
  if (held_get_) {
    // A second concurrent GET: refused, and the session is closed (the first GET gets "1").
    log().warn("session {}: overlapping poll requests, closing", id_);
    server_.respond_error(request_id, Error::kBadRequest);
    close("transport error");
    return;
  }
  held_get_ = request_id;
  server_.hold(*this, request_id);
  if (closing_) return on_closing_poll();
  if (upgrading_) queue_.push_back(text_frame("6"));
  if (!queue_.empty()) flush_poll();
}

void Session::flush_poll() {
  std::string body;
  for (const auto& f : queue_) {
    bool binary = false;
    const std::string_view payload = ws::frame_payload(*f, &binary);
    append_to_payload(body, payload, binary);
  }
  queue_.clear();
  if (queue_.capacity() > 16) std::vector<ws::SharedFrame>().swap(queue_);
  const std::uint64_t request = held_get_;
  held_get_ = 0;
  server_.release(*this, request);
  server_.respond(request, 200, "text/plain; charset=UTF-8", std::move(body));
  if (closing_ && close_packet_sent_) {
    closing_ = false;
    server_.forget(*this);
  }
}

void Session::on_closing_poll() {
  if (queue_.empty()) {
    queue_.push_back(text_frame("1"));
    close_packet_sent_ = true;
  }
  flush_poll();
}

void Session::on_post(std::uint64_t request_id, std::string_view body, bool too_large) {
  if (too_large) {
    // As engine.io: the client treats the 413 as a transport error and closes the session.
    log().warn("session {}: POST body over maxHttpBufferSize ({} bytes), refused with 413", id_,
               server_.config().max_payload);
    server_.respond(request_id, 413, "text/plain; charset=UTF-8", "");
    return;
  }
  std::vector<Packet> packets;
  if (!decode_payload(body, packets)) {
    log().warn("session {}: malformed polling payload, closing", id_);
    server_.respond_error(request_id, Error::kBadRequest);
    close("parse error");
    return;
  }
  server_.respond(request_id, 200, "text/html", "ok");
  for (auto& p : packets) {
    if (closed_) break;
    on_packet(p.type, p.binary, std::move(p.data));
  }
}

void Session::tick(std::uint32_t now) {
  if (closed_) {
    if (close_after_upgrade_ && now - closing_at_ >= server_.config().upgrade_timeout_ms) {
      log().info("session {}: closed while upgrading and the upgrade never completed, dropping the probe", id_);
      end_deferred_upgrade_close();
      return;
    }
    if (closing_ && now - closing_at_ >= c_closing_grace_ms) {
      closing_ = false;
      server_.forget(*this);
    }
    return;
  }
  const Config& c = server_.config();
  if (probe_ && now - probe_at_ >= c.upgrade_timeout_ms) {
    log().info("session {}: upgrade not completed within {} ms, dropping the probe", id_, c.upgrade_timeout_ms);
    drop_probe(ws::kNormal);
    upgrading_ = false;
  }
  if (!established_ && now - opened_at_ >= c.connect_timeout_ms) {
    log().info("session {}: no namespace joined within {} ms, closing", id_, c.connect_timeout_ms);
    close("forced close");
    return;
  }
  if (awaiting_pong_) {
    if (now - ping_at_ >= c.ping_timeout_ms) {
      log().info("session {}: no pong within {} ms, closing", id_, c.ping_timeout_ms);
      close("ping timeout");
    }
  } else if (now - ping_at_ >= c.ping_interval_ms) {
    awaiting_pong_ = true;
    ping_at_ = now;
    send(text_frame("2"));
  }
}

// ---------------------------------------------------------------------------- Server

Server::Server(Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Listener& listener)
    : workers_(std::move(workers)), sink_(std::move(sink)), listener_(listener) {
  std::random_device rd;
  for (int i = 0; i < 32; ++i) secret_.push_back(static_cast<char>(rd()));
  for (std::size_t i = 0; i < workers_.size(); ++i) per_worker_.push_back(std::make_unique<PerWorker>());
  reconfigure(config);
  for (Worker* w : workers_) {
    PerWorker* pw = per_worker_[w->index()].get();
    asio::post(w->io(), [this, w, pw] {
      w->add_tick_hook([pw](std::uint32_t now) {
        for (auto& [id, s] : pw->sessions) s->tick(now);
      });
      w->add_drain_hook([pw] {
        for (auto& [id, s] : pw->sessions) s->close_with("server shutting down", ws::kGoingAway, false);
      });
      w->request_tick_period(std::chrono::milliseconds(
          std::min(config_.ping_interval_ms, config_.ping_timeout_ms) / 4));
    });
  }
}

Server::~Server() = default;

void Server::reconfigure(const Config& config) {
  config_ = config;
  if (config_.path.empty() || config_.path.back() != '/') config_.path.push_back('/');
  ws_settings_.max_payload = config_.max_payload;
  ws_settings_.ping_interval_ms = 0;  // Engine.IO pings itself
}

std::string Server::public_id(ClientId id, char tag) const {
  std::uint8_t raw[15];
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::uint8_t>(id >> (8 * i));
  std::string keyed = secret_;
  keyed.push_back(tag);
  keyed.append(reinterpret_cast<const char*>(raw), 8);
  std::uint8_t digest[20];
  ws::sha1(reinterpret_cast<const std::uint8_t*>(keyed.data()), keyed.size(), digest);
  for (int i = 0; i < 7; ++i) raw[8 + i] = digest[i];
  return base64url(raw, 15);
}

bool Server::parse_public_id(std::string_view text, char tag, ClientId& id) const {
  if (text.size() != 20) return false;
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  std::string raw;
  if (!ws::base64_decode(b64, raw) || raw.size() != 15) return false;
  ClientId v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(raw[i]);
  if (public_id(v, tag) != text) return false;
  id = v;
  return true;
}

bool Server::owns(std::string_view target) const {
  const std::string_view path = http::path_of(target);
  const std::string_view base = std::string_view(config_.path).substr(0, config_.path.size() - 1);
  return path == config_.path || path == base;
}

int Server::worker_for(std::string_view target) const {
  const auto sid = http::query_param(http::query_of(target), "sid");
  ClientId id;
  if (sid && parse_public_id(*sid, 'e', id)) return static_cast<int>(worker_of(id) % workers_.size());
  return -1;
}

ClientId Server::handle_request(std::uint64_t request_id, HttpRequest request, ClientId new_id, unsigned worker) {
  const std::string_view query = http::query_of(request.target);
  const auto eio = http::query_param(query, "EIO");
  const auto transport = http::query_param(query, "transport");
  const auto sid = http::query_param(query, "sid");
  auto refuse = [&](Error e) {
    log().warn("engine.io request refused: {} {}: {}", request.method, request.target, error_message(e));
    respond_error(request_id, e);
    return ClientId{0};
  };
  if (!eio || *eio != "4") return refuse(Error::kUnsupportedProtocolVersion);
  if (!transport || (*transport != "polling" && *transport != "websocket")) return refuse(Error::kUnknownTransport);
  if (*transport == "polling" && !config_.polling) return refuse(Error::kUnknownTransport);
  if (*transport == "websocket") return refuse(Error::kBadRequest);  // websocket needs an upgrade
  if (sid) {
    ClientId id;
    if (!parse_public_id(*sid, 'e', id)) return refuse(Error::kUnknownSid);
    Worker* w = workers_[worker_of(id) % workers_.size()];
    w->command([this, w, request_id, request = std::make_shared<HttpRequest>(std::move(request)), id]() mutable {
      on_request(*w, request_id, std::move(*request), id);
    });
    return 0;
  }
  if (request.method != "GET") return refuse(Error::kBadHandshakeMethod);
  Worker* w = workers_[worker % workers_.size()];
  w->command([this, w, request_id, new_id] {
    auto session = std::make_shared<Session>(*this, *w, new_id, Session::Transport::kPolling);
    per_worker_[w->index()]->sessions.emplace(new_id, session);
    sessions_total_.fetch_add(1, std::memory_order_relaxed);
    respond(request_id, 200, "text/plain; charset=UTF-8", open_packet(*session));
  });
  return new_id;
}

void Server::on_request(Worker& worker, std::uint64_t request_id, HttpRequest request, ClientId id) {
  worker.refresh_clock();
  auto session = find(worker, id);
  if (!session || (session->closed_ && !(session->closing_ && request.method == "GET"))) {
    return respond_error(request_id, Error::kUnknownSid);
  }
  if (session->transport_ != Session::Transport::kPolling) {
    log().warn("session {}: polling request after the upgrade, refused", id);
    return respond_error(request_id, Error::kBadRequest);
  }
  if (request.method == "GET") return session->on_poll(request_id);
  if (request.method == "POST") return session->on_post(request_id, request.body, request.too_large);
  respond_error(request_id, Error::kBadRequest);
}

void Server::request_aborted(std::uint64_t request_id) {
  for (Worker* w : workers_) {
    w->command([this, w, request_id] {
      PerWorker& pw = *per_worker_[w->index()];
      auto it = pw.held.find(request_id);
      if (it == pw.held.end()) return;
      auto session = find(*w, it->second);
      pw.held.erase(it);
      if (session && session->held_get_ == request_id) {
        session->held_get_ = 0;
        log().info("session {}: poll request closed by the client", session->id_);
        session->close("transport error");
      }
    });
  }
}

void Server::accept_websocket(Worker& worker, ClientId id, boost::asio::ip::tcp::socket socket,
                              const UpgradeRequest& request, const std::string& accept_key) {
  const std::string_view query = http::query_of(request.target);
  const auto eio = http::query_param(query, "EIO");
  const auto transport = http::query_param(query, "transport");
  const auto sid = http::query_param(query, "sid");
  auto refuse = [&](Error e) {
    log().warn("engine.io upgrade refused: {}: {}", request.target, error_message(e));
    const std::string response = http::error_response(e == Error::kForbidden ? 403 : 400, error_body(e), "application/json");
    http::send_and_close(socket.release(), response);
  };
  if (!eio || *eio != "4") return refuse(Error::kUnsupportedProtocolVersion);
  if (!transport || *transport != "websocket" || !config_.websocket) return refuse(Error::kUnknownTransport);
  const std::string response = http::switching_protocols_response(accept_key);
  if (sid) {
    ClientId sid_id;
    if (!parse_public_id(*sid, 'e', sid_id)) return refuse(Error::kUnknownSid);
    auto session = find(worker, sid_id);
    if (!session || session->closed_) return refuse(Error::kUnknownSid);
    if (session->transport_ != Session::Transport::kPolling || session->probe_ || !config_.allow_upgrades) {
      return refuse(Error::kBadRequest);
    }
    auto probe = std::make_shared<WsTransport>(worker, std::move(socket), id, ws_settings_, session);
    worker.add(probe);
    session->probe_ = probe;
    session->probe_at_ = worker.now_ms();
    probe->start(response, request.head);
    return;
  }
  auto session = std::make_shared<Session>(*this, worker, id, Session::Transport::kWebSocket);
  per_worker_[worker.index()]->sessions.emplace(id, session);
  sessions_total_.fetch_add(1, std::memory_order_relaxed);
  auto ws = std::make_shared<WsTransport>(worker, std::move(socket), id, ws_settings_, session);
  worker.add(ws);
  session->ws_ = ws;
  ws->start(response, request.head, ws::make_shared_frame(ws::kText, open_packet(*session)));
}

void Server::close_all(std::string_view reason) {
  for (Worker* w : workers_) {
    w->command([pw = per_worker_[w->index()].get(), reason = std::string(reason)] {
      for (auto& [id, s] : pw->sessions) s->close(reason);
    });
  }
}

std::shared_ptr<Session> Server::find(Worker& worker, ClientId id) {
  auto& sessions = per_worker_[worker.index()]->sessions;
  auto it = sessions.find(id);
  return it == sessions.end() ? nullptr : it->second;
}

void Server::hold(Session& session, std::uint64_t request_id) {
  per_worker_[session.worker_.index()]->held[request_id] = session.id_;
}

void Server::release(Session& session, std::uint64_t request_id) {
  per_worker_[session.worker_.index()]->held.erase(request_id);
}

void Server::forget(Session& session) {
  PerWorker* pw = per_worker_[session.worker_.index()].get();
  const ClientId id = session.id_;
  sessions_total_.fetch_sub(1, std::memory_order_relaxed);
  // Deferred: the caller may be iterating the sessions, or be the session itself.
  asio::post(session.worker_.io(), [pw, id] { pw->sessions.erase(id); });
}

void Server::respond(std::uint64_t request_id, int status, std::string_view content_type, std::string body) {
  Event e(Event::Type::kHttpResponse);
  e.client = request_id;
  e.code = static_cast<std::uint16_t>(status);
  e.text = nlohmann::json{{"Content-Type", content_type}, {"Cache-Control", "no-store"}}.dump();
  e.data = std::move(body);
  sink_->push(std::move(e));
}

void Server::respond_error(std::uint64_t request_id, Error e) {
  Event ev(Event::Type::kHttpResponse);
  ev.client = request_id;
  ev.code = e == Error::kForbidden ? 403 : 400;
  ev.text = R"({"Content-Type":"application/json"})";
  ev.data = error_body(e);
  sink_->push(std::move(ev));
}

std::string Server::open_packet(const Session& session) const {
  nlohmann::json upgrades = nlohmann::json::array();
  if (session.transport_ == Session::Transport::kPolling && config_.websocket && config_.allow_upgrades) {
    upgrades.push_back("websocket");
  }
  return "0" + nlohmann::json{{"sid", public_id(session.id_, 'e')},
                              {"upgrades", upgrades},
                              {"pingInterval", config_.ping_interval_ms},
                              {"pingTimeout", config_.ping_timeout_ms},
                              {"maxPayload", config_.max_payload}}
                   .dump();
}

}  // namespace sidewire::eio
