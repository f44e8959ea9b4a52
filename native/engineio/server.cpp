#include "engineio/server.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

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

// engine.io's names for packet types (its packets' `type`).
const char* packet_type_name(char type) {
  switch (type) {
    case kOpen: return "open";
    case kClose: return "close";
    case kPing: return "ping";
    case kPong: return "pong";
    case kMessage: return "message";
    case kUpgrade: return "upgrade";
    case kNoop: return "noop";
  }
  return "error";
}

// The body of a 429 for a handshake over the limits.
std::string limited_body(const guard::Admission& a) {
  return nlohmann::json{{"message", a.message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Header lines for a 101 from JS: each "Name: value" line kept only if it holds no stray CR
// or LF, so that nothing JS passes can end the head early or add a line of its own.
std::string safe_header_lines(std::string_view lines) {
  std::string out;
  while (!lines.empty()) {
    const std::size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines = eol == std::string_view::npos ? std::string_view() : lines.substr(eol + 2);
    if (line.empty() || line.find_first_of("\r\n") != std::string_view::npos || line.find(':') == std::string_view::npos ||
        line.front() == ':' || line.front() == ' ') {
      continue;
    }
    out.append(line).append("\r\n");
  }
  return out;
}

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

std::string_view WsTransport::peer_address() const {
  return session_ ? std::string_view(session_->address()) : std::string_view();
}

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
  // What this turn of the loop queued is written by its flush pass, as engine.io's write would
  // have been at once; the JS turn that queued it is unwritable all the same (sio send_to).
  if (transport_ == Transport::kWebSocket) return ws_ && ws_->open() && !ws_->write_blocked();
  return held_get_ != 0 && queue_.empty();  // a packet queued for the held GET is on its way
}

std::uint64_t Session::max_payload() const { return server_.config(worker_).max_payload; }

void Session::send(const ws::SharedFrame& frame, bool compress) {
  if (closed_ || overflowed_) return;
  if (watch_ & kWatchPacketCreate) report_packet(Event::Type::kEioPacketCreate, frame);
  if (transport_ == Transport::kWebSocket) {
    if (ws_) {
      ws_->send(frame, compress);
      if (watch_ & kWatchDrain) report(Event::Type::kEioDrain);
    }
    return;
  }
  queue_bytes_ += frame->size() + kQueuedFrameOverhead;
  if (queue_bytes_ > server_.config(worker_).max_queued_bytes && !upgrading_) {
    // A polling client that never fetches what it is sent: dropped as a WebSocket peer that
    // does not read is. Not here and now: the caller may be walking a room.
    overflowed_ = true;
    worker_.metrics().backpressure_drops.fetch_add(1, std::memory_order_relaxed);
    count_limit(worker_.metrics(), Limit::kOutgoingQueue);
    log_conn(spdlog::level::warn, "session", id_, address_, "transport error",
             "over {} bytes waiting for a poll, dropping a client that does not fetch", server_.config(worker_).max_queued_bytes);
    asio::post(worker_.io(), [self = shared_from_this()] {
      self->queue_.clear();
      self->queue_bytes_ = 0;
      self->close("transport error");
    });
    return;
  }
  queue_.push_back(frame);
  if (compress) ++queue_compressible_;
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
    log_conn(spdlog::level::debug, "session", id_, address_, reason, "closed while upgrading; closing once the upgrade completes");
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
      if (held_get_) on_closing_poll(true);
    } else {
      if (held_get_) {
        queue_.push_back(text_frame(client_asked_ ? "6" : "1"));
        flush_poll();
      }
      server_.forget(*this);
    }
  }
  log_conn(spdlog::level::debug, "session", id_, address_, reason, "closed");
  report_closed(reason);
}

// Tells the Socket.IO layer, and JS when it listens, that the session is gone.
void Session::report_closed(std::string_view reason) {
  server_.listener().on_close(*this, reason);
  if (server_.config(worker_).hooks) {
    Event e(Event::Type::kEioClose);
    e.client = id_;
    e.data.assign(reason);
    server_.sink().push(std::move(e));
  }
}

void Session::report(Event::Type type, std::string data, bool binary, std::string text) {
  Event e(type);
  e.client = id_;
  e.data = std::move(data);
  e.binary = binary;
  e.text = std::move(text);
  server_.sink().push(std::move(e));
}

// A packet as engine.io's `packet`/`packetCreate` events carry it: its type and data.
void Session::report_packet(Event::Type type, const ws::SharedFrame& frame) {
  bool binary = false;
  const std::string_view payload = ws::frame_payload(*frame, &binary);
  if (binary) return report(type, std::string(payload), true, "message");
  if (payload.empty()) return;
  report(type, std::string(payload.substr(1)), false, packet_type_name(payload[0]));
}

void Session::on_packet(char type, bool binary, std::string data) {
  if ((watch_ & kWatchPacket) && type != kClose) {
    report(Event::Type::kEioPacket, data, binary, packet_type_name(type));
  }
  if (awaiting_pong_ && !ping_refreshed_ && type != kPong) {
    // As engine.io: a client that is sending is alive; its ping timeout is extended, once.
    ping_at_ = worker_.now_ms();
    ping_refreshed_ = true;
  }
  switch (type) {
    case kMessage:
      server_.listener().on_message(*this, binary, std::move(data));
      return;
    case kPong:
      awaiting_pong_ = false;
      ping_at_ = worker_.now_ms();
      if (watch_ & kWatchHeartbeat) report(Event::Type::kEioHeartbeat);
      return;
    case kPing:
      // In Engine.IO v4 the server pings; engine.io takes a client's ping as a transport error.
      log_conn(spdlog::level::warn, "session", id_, address_, "transport error", "ping from the client (invalid heartbeat direction), closing");
      close("transport error");
      return;
    case kClose:
      client_asked_ = true;
      close("transport close");
      return;
    case kNoop:
      return;
    default:
      log_conn(spdlog::level::warn, "session", id_, address_, "parse error", "unexpected packet type '{}', closing", type);
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
    log_conn(spdlog::level::warn, "session", id_, address_, "parse error", "malformed packet over websocket, closing");
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
      if (watch_ & kWatchUpgrading) report(Event::Type::kEioUpgrading, "websocket");
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
  server_.websocket_sessions_.fetch_add(1, std::memory_order_relaxed);
  upgrading_ = false;
  for (const auto& f : queue_) ws_->send(f);
  queue_.clear();
  queue_bytes_ = 0;
  queue_compressible_ = 0;
  std::vector<ws::SharedFrame>().swap(queue_);
  if (held_get_) {
    queue_.push_back(text_frame("6"));
    flush_poll();
    queue_.clear();
  }
  log_conn(spdlog::level::debug, "session", id_, address_, "", "upgraded to websocket");
  if (server_.config(worker_).hooks) {
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
    log_conn(spdlog::level::warn, "session", id_, address_, "transport error", "overlapping poll requests, closing");
    server_.respond_error(request_id, Error::kBadRequest);
    close("transport error");
    return;
  }
  held_get_ = request_id;
  server_.hold(*this, request_id);
  if (closing_) return on_closing_poll(false);
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
  queue_bytes_ = 0;
  if (queue_.capacity() > 16) std::vector<ws::SharedFrame>().swap(queue_);
  const bool compressible = queue_compressible_ > 0;
  queue_compressible_ = 0;
  const std::uint64_t request = held_get_;
  held_get_ = 0;
  server_.release(*this, request);
  server_.respond(request, 200, "text/plain; charset=UTF-8", std::move(body), compressible);
  if (watch_ & kWatchDrain) report(Event::Type::kEioDrain);
  if (closing_ && close_packet_sent_) {
    closing_ = false;
    server_.forget(*this);
  }
}

// A GET on a gracefully closed session: what is queued goes first, then the close packet. As
// engine.io: a GET held when the close came gets "1"; a later one, which engine.io's polling
// answers through an empty send with the close appended, gets noop and close ("6\x1e1").
void Session::on_closing_poll(bool was_held) {
  if (queue_.empty()) {
    if (!was_held) queue_.push_back(text_frame("6"));
    queue_.push_back(text_frame("1"));
    close_packet_sent_ = true;
  }
  flush_poll();
}

void Session::on_post(std::uint64_t request_id, std::string_view body, bool too_large) {
  worker_.metrics().bytes_received.fetch_add(body.size(), std::memory_order_relaxed);
  if (too_large) {
    count_limit(worker_.metrics(), Limit::kPayload);
    // As engine.io: the client treats the 413 as a transport error and closes the session.
    log_conn(spdlog::level::warn, "session", id_, address_, "transport error",
             "POST body over maxHttpBufferSize ({} bytes), refused with 413", server_.config(worker_).max_payload);
    server_.respond(request_id, 413, "text/plain; charset=UTF-8", "");
    return;
  }
  std::vector<Packet> packets;
  // A polling body is text (binary packets travel base64 in it): checked as UTF-8 here, as a
  // WebSocket text frame is, before any of it reaches JSON.
  if (!ws::is_valid_utf8(body)) {
    worker_.metrics().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log_conn(spdlog::level::warn, "session", id_, address_, "parse error", "polling payload is not valid UTF-8, closing");
    server_.respond_error(request_id, Error::kBadRequest);
    close("parse error");
    return;
  }
  if (!decode_payload(body, packets)) {
    log_conn(spdlog::level::warn, "session", id_, address_, "parse error", "malformed polling payload, closing");
    server_.respond_error(request_id, Error::kBadRequest);
    close("parse error");
    return;
  }
  if (worker_.js_congested()) {
    // JS is behind with its events: the client's next POST waits for this answer, as a
    // WebSocket peer waits for its TCP window.
    count_limit(worker_.metrics(), Limit::kEventsForJs);
    worker_.when_relieved([server = &server_, request_id] { server->respond(request_id, 200, "text/html", "ok"); });
  } else {
    server_.respond(request_id, 200, "text/html", "ok");
  }
  for (auto& p : packets) {
    if (closed_) break;
    on_packet(p.type, p.binary, std::move(p.data));
  }
}

void Session::tick(std::uint32_t now) {
  if (closed_) {
    if (close_after_upgrade_ && now - closing_at_ >= server_.config(worker_).upgrade_timeout_ms) {
      log_conn(spdlog::level::info, "session", id_, address_, "", "closed while upgrading and the upgrade never completed, dropping the probe");
      end_deferred_upgrade_close();
      return;
    }
    if (closing_ && now - closing_at_ >= c_closing_grace_ms) {
      closing_ = false;
      server_.forget(*this);
    }
    return;
  }
  const Config& c = server_.config(worker_);
  if (probe_ && now - probe_at_ >= c.upgrade_timeout_ms) {
    log_conn(spdlog::level::info, "session", id_, address_, "", "upgrade not completed within {} ms, dropping the probe", c.upgrade_timeout_ms);
    drop_probe(ws::kNormal);
    upgrading_ = false;
  }
  if (!established_ && now - opened_at_ >= c.connect_timeout_ms) {
    log_conn(spdlog::level::info, "session", id_, address_, "forced close", "no namespace joined within {} ms, closing", c.connect_timeout_ms);
    close("forced close");
    return;
  }
  if (awaiting_pong_) {
    if (now - ping_at_ >= c.ping_timeout_ms) {
      log_conn(spdlog::level::info, "session", id_, address_, "ping timeout", "no pong within {} ms, closing", c.ping_timeout_ms);
      close("ping timeout");
    }
  } else if (now - ping_at_ >= c.ping_interval_ms) {
    awaiting_pong_ = true;
    ping_refreshed_ = false;
    ping_at_ = now;
    send(text_frame("2"));
  }
}

// ---------------------------------------------------------------------------- Server

Server::Server(Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Listener& listener)
    : workers_(std::move(workers)), sink_(std::move(sink)), listener_(listener) {
  if (config.path.empty() || config.path.back() != '/') config.path.push_back('/');
  front_ = config;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    per_worker_.push_back(std::make_unique<PerWorker>());
    apply(*per_worker_.back(), config);  // before the threads see it: the post below orders it
  }
  for (Worker* w : workers_) {
    PerWorker* pw = per_worker_[w->index()].get();
    asio::post(w->io(), [w, pw] {
      w->add_tick_hook([pw](std::uint32_t now) {
        for (auto& [id, s] : pw->sessions) s->tick(now);
      });
      w->add_drain_hook([pw] {
        for (auto& [id, s] : pw->sessions) s->close_with("server shutting down", ws::kGoingAway, false);
      });
      w->request_tick_period(std::chrono::milliseconds(
          std::min(pw->config.ping_interval_ms, pw->config.ping_timeout_ms) / 4));
    });
  }
}

Server::~Server() = default;

void Server::apply(PerWorker& pw, const Config& config) {
  pw.config = config;
  pw.ws_settings.max_payload = config.max_payload;
  pw.ws_settings.ping_interval_ms = 0;  // Engine.IO pings itself
  pw.ws_settings.max_queued_bytes = config.max_queued_bytes;
  pw.ws_settings.deflate = config.deflate;
}

void Server::reconfigure(const Config& c) {
  auto config = std::make_shared<Config>(c);
  if (config->path.empty() || config->path.back() != '/') config->path.push_back('/');
  {
    std::lock_guard lock(front_mutex_);
    front_ = *config;
  }
  for (Worker* w : workers_) {
    PerWorker* pw = per_worker_[w->index()].get();
    w->command([w, pw, config] {
      apply(*pw, *config);
      w->request_tick_period(std::chrono::milliseconds(std::min(config->ping_interval_ms, config->ping_timeout_ms) / 4));
    });
  }
}

Config Server::front() const {
  std::lock_guard lock(front_mutex_);
  return front_;
}

// A public id is the 64-bit id and its tag, padded to one AES block and encrypted with a key
// only this process knows: 128 bits an outsider cannot predict from the ids it has seen, that
// say nothing about how many connections came before, and that decode without a table (the
// padding, checked on the way back, makes a forged id fail).
std::string Server::public_id(ClientId id, char tag) const {
  std::uint8_t block[16] = {};
  for (int i = 0; i < 8; ++i) block[i] = static_cast<std::uint8_t>(id >> (8 * i));
  block[8] = static_cast<std::uint8_t>(tag);
  std::uint8_t out[16];
  if (!ids_.encrypt(block, out)) throw std::runtime_error("cannot encrypt an id");
  return base64url(out, 16);
}

bool Server::parse_public_id(std::string_view text, char tag, ClientId& id) const {
  if (text.size() != 22) return false;
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/') return false;
  }
  b64.append("==");
  std::string raw;
  if (!ws::base64_decode(b64, raw) || raw.size() != 16) return false;
  std::uint8_t block[16];
  if (!ids_.decrypt(reinterpret_cast<const std::uint8_t*>(raw.data()), block)) return false;
  if (block[8] != static_cast<std::uint8_t>(tag)) return false;
  for (int i = 9; i < 16; ++i) {
    if (block[i] != 0) return false;
  }
  ClientId v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | block[i];
  if (base64url(reinterpret_cast<const std::uint8_t*>(raw.data()), 16) != text) return false;  // one spelling only
  id = v;
  return true;
}

bool Server::owns(std::string_view target) const {
  const std::string_view path = http::path_of(target);
  std::lock_guard lock(front_mutex_);
  const std::string_view base = std::string_view(front_.path).substr(0, front_.path.size() - 1);
  return path == front_.path || path == base;
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
    log().warn("engine.io request refused: {} {}: {}", request.method,
               http::redact_query(request.target, front().secret_query_param), error_message(e));
    respond_error(request_id, e, true);
    return ClientId{0};
  };
  if (!eio || *eio != "4") return refuse(Error::kUnsupportedProtocolVersion);
  if (!transport || (*transport != "polling" && *transport != "websocket")) return refuse(Error::kUnknownTransport);
  if (*transport == "polling" && !front().polling) return refuse(Error::kUnknownTransport);
  if (*transport == "websocket") return refuse(Error::kBadRequest);  // websocket needs an upgrade
  if (sid) {
    ClientId id;
    if (!parse_public_id(*sid, 'e', id)) return refuse(Error::kUnknownSid);
    Worker* w = workers_[worker_of(id) % workers_.size()];
    w->command([this, w, request_id, request = std::make_shared<HttpRequest>(std::move(request)), id]() mutable {
      try {
        on_request(*w, request_id, std::move(*request), id);
      } catch (const std::exception& e) {
        // This request's session ends; the thread and every other session go on.
        w->metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
        log().error("session {}: internal error on a polling request: {}; closing", id, e.what());
        respond_error(request_id, Error::kBadRequest);
        if (auto session = find(*w, id)) session->close("transport error");
      }
    });
    return 0;
  }
  if (request.method != "GET") return refuse(Error::kBadHandshakeMethod);
  // Shared: the command below must be copyable. Released with it if it never runs.
  auto ticket = std::make_shared<std::unique_ptr<guard::Ticket>>();
  if (std::shared_ptr<const guard::Setup> g = front().guard) {
    guard::Admission a = guard::admit(std::move(g), request.remote_address, request.headers);
    if (!a.ticket) {
      refuse_admission(a, request.remote_address);
      respond_limited(request_id, a);
      return ClientId{0};
    }
    *ticket = std::move(a.ticket);
  }
  Worker* w = workers_[worker % workers_.size()];
  w->command([this, w, request_id, new_id, ticket, request = std::make_shared<HttpRequest>(std::move(request))] {
    auto session = std::make_shared<Session>(*this, *w, new_id, Session::Transport::kPolling);
    session->ticket = std::move(*ticket);
    session->address_ = session->ticket ? session->ticket->address() : guard::canonical_address(request->remote_address);
    per_worker_[w->index()]->sessions.emplace(new_id, session);
    sessions_total_.fetch_add(1, std::memory_order_relaxed);
    listener_.on_handshake(*session, request->target, request->headers);
    report_open(*session);
    respond(request_id, 200, "text/plain; charset=UTF-8", open_packet(*session));
  });
  return new_id;
}

void Server::on_request(Worker& worker, std::uint64_t request_id, HttpRequest request, ClientId id) {
  worker.refresh_clock();
  auto session = find(worker, id);
  if (!session || (session->closed_ && !(session->closing_ && request.method == "GET"))) {
    return respond_error(request_id, Error::kUnknownSid, true);
  }
  if (session->transport_ != Session::Transport::kPolling) {
    log().warn("session {}: polling request after the upgrade, refused", id);
    return respond_error(request_id, Error::kBadRequest, true);
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
        log_conn(spdlog::level::info, "session", session->id_, session->address_, "transport error", "poll request closed by the client");
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
    log().warn("engine.io upgrade refused: {}: {}",
               http::redact_query(request.target, per_worker_[worker.index()]->config.secret_query_param), error_message(e));
    // The engine counted it as a connection when it took the upgrade: it never was one.
    Metrics& m = worker.metrics();
    m.connections.fetch_sub(1, std::memory_order_relaxed);
    m.connections_total.fetch_sub(1, std::memory_order_relaxed);
    m.upgrades_refused.fetch_add(1, std::memory_order_relaxed);
    const std::string response = http::error_response(e == Error::kForbidden ? 403 : 400, error_body(e), "application/json");
    http::send_and_close(socket.release(), response);
    if (per_worker_[worker.index()]->config.connection_errors) {
      Event ev(Event::Type::kEioConnectionError);
      ev.client = id;
      ev.code = static_cast<std::uint16_t>(e);
      ev.text = request.target;
      ev.data = request.remote_address;
      ev.data.append("\r\n");
      for (const auto& [name, value] : request.headers) ev.data.append(name).append(": ").append(value).append("\r\n");
      sink_->push(std::move(ev));
    }
  };
  if (!eio || *eio != "4") return refuse(Error::kUnsupportedProtocolVersion);
  const Config& config = per_worker_[worker.index()]->config;
  const WsSettings& ws_settings = per_worker_[worker.index()]->ws_settings;
  if (!transport || *transport != "websocket" || !config.websocket) return refuse(Error::kUnknownTransport);
  std::optional<ws::DeflateParams> deflate;
  if (ws_settings.deflate.enabled) {
    std::string declined;
    deflate = ws::negotiate_deflate(request, ws_settings.deflate, &declined);
    if (!deflate && !declined.empty()) log().debug("engine.io upgrade: permessage-deflate offer declined: {}", declined);
  }
  std::string response =
      http::switching_protocols_response(accept_key, deflate ? ws::deflate_response(*deflate) : std::string());
  if (!request.response_headers.empty()) {
    response.insert(response.size() - 2, safe_header_lines(request.response_headers));
  }
  if (sid) {
    ClientId sid_id;
    if (!parse_public_id(*sid, 'e', sid_id)) return refuse(Error::kUnknownSid);
    auto session = find(worker, sid_id);
    if (!session || session->closed_) return refuse(Error::kUnknownSid);
    if (session->transport_ != Session::Transport::kPolling || session->probe_ || !config.allow_upgrades) {
      return refuse(Error::kBadRequest);
    }
    auto probe = std::make_shared<WsTransport>(worker, std::move(socket), id, ws_settings, session);
    if (deflate) probe->enable_deflate(*deflate);
    worker.add(probe);
    session->probe_ = probe;
    session->probe_at_ = worker.now_ms();
    probe->start(response, request.head);
    return;
  }
  std::unique_ptr<guard::Ticket> ticket;
  if (config.guard) {
    guard::Admission a = guard::admit(config.guard, request.remote_address, request.headers);
    if (!a.ticket) {
      refuse_admission(a, request.remote_address);
      Metrics& m = worker.metrics();
      m.connections.fetch_sub(1, std::memory_order_relaxed);
      m.connections_total.fetch_sub(1, std::memory_order_relaxed);
      m.upgrades_refused.fetch_add(1, std::memory_order_relaxed);
      http::send_and_close(socket.release(),
                           http::error_response(429, limited_body(a), "application/json", a.retry_after_header()));
      return;
    }
    ticket = std::move(a.ticket);
  }
  auto session = std::make_shared<Session>(*this, worker, id, Session::Transport::kWebSocket);
  session->ticket = std::move(ticket);
  session->address_ = session->ticket ? session->ticket->address() : guard::canonical_address(request.remote_address);
  per_worker_[worker.index()]->sessions.emplace(id, session);
  sessions_total_.fetch_add(1, std::memory_order_relaxed);
  websocket_sessions_.fetch_add(1, std::memory_order_relaxed);
  auto ws = std::make_shared<WsTransport>(worker, std::move(socket), id, ws_settings, session);
  if (deflate) ws->enable_deflate(*deflate);
  worker.add(ws);
  session->ws_ = ws;
  listener_.on_handshake(*session, request.target, request.headers);
  report_open(*session);
  ws->start(response, request.head, ws::make_shared_frame(ws::kText, open_packet(*session)));
}

void Server::report_open(Session& session) {
  if (!config(session.worker_).open_events) return;
  Event e(Event::Type::kEioOpen);
  e.client = session.id_;
  e.data = public_id(session.id_, 'e');
  e.text = session.transport_name();
  sink_->push(std::move(e));
}

void Server::watch(ClientId id, std::uint32_t mask) {
  Worker* w = workers_[worker_of(id) % workers_.size()];
  w->command([this, w, id, mask] {
    if (auto session = find(*w, id)) session->watch_ = static_cast<std::uint8_t>(mask);
  });
}

void Server::close_session(ClientId id) {
  Worker* w = workers_[worker_of(id) % workers_.size()];
  w->command([this, w, id] {
    if (auto session = find(*w, id)) session->close_gracefully("forced close");
  });
}

void Server::release_all() {
  for (auto& pw : per_worker_) {
    for (auto& [id, s] : pw->sessions) {
      for (auto* t : {&s->ws_, &s->probe_}) {
        if (*t) (*t)->detach();
        t->reset();
      }
      s->user.reset();
    }
    pw->sessions.clear();
    pw->held.clear();
  }
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
  session.ticket.reset();  // its address (and users) no longer count
  PerWorker* pw = per_worker_[session.worker_.index()].get();
  const ClientId id = session.id_;
  sessions_total_.fetch_sub(1, std::memory_order_relaxed);
  if (session.transport_ == Session::Transport::kWebSocket) websocket_sessions_.fetch_sub(1, std::memory_order_relaxed);
  // Deferred: the caller may be iterating the sessions, or be the session itself.
  asio::post(session.worker_.io(), [pw, id] { pw->sessions.erase(id); });
}

void Server::respond(std::uint64_t request_id, int status, std::string_view content_type, std::string body,
                     bool compressible) {
  Event e(Event::Type::kHttpResponse);
  e.client = request_id;
  e.code = static_cast<std::uint16_t>(status);
  if (compressible) e.number = 1;
  e.text = nlohmann::json{{"Content-Type", content_type}, {"Cache-Control", "no-store"}}.dump();
  workers_.front()->metrics().bytes_sent.fetch_add(body.size(), std::memory_order_relaxed);
  e.data = std::move(body);
  sink_->push(std::move(e));
}

void Server::refuse_admission(const guard::Admission& a, std::string_view peer) {
  count_limit(workers_.front()->metrics(),
              a.refusal == guard::Counter::Refusal::kTooMany ? Limit::kConnectionsPerIp : Limit::kConnectRate);
  const char* reason = a.refusal == guard::Counter::Refusal::kTooMany ? "connectionsPerIp" : "connectRatePerIp";
  std::uint64_t skipped = 0;
  if (!guard::refusal_log().allow(&skipped)) return;  // counted all the same
  const std::string more = skipped ? fmt::format(" ({} more refused since the last line)", skipped) : std::string();
  if (a.address == peer) {
    log_conn(spdlog::level::warn, "session", 0, a.address, reason, "handshake refused (429): {}{}", a.message, more);
  } else {
    log_conn(spdlog::level::warn, "session", 0, a.address, reason, "handshake (by proxy {}) refused (429): {}{}", peer, a.message,
             more);
  }
}

void Server::respond_limited(std::uint64_t request_id, const guard::Admission& a) {
  Event e(Event::Type::kHttpResponse);
  e.client = request_id;
  e.code = 429;
  nlohmann::json headers{{"Content-Type", "application/json"}};
  if (const std::uint32_t s = a.retry_after_seconds()) headers["Retry-After"] = std::to_string(s);
  e.text = headers.dump();
  e.data = limited_body(a);
  sink_->push(std::move(e));
}

void Server::respond_error(std::uint64_t request_id, Error e, bool refused) {
  Event ev(Event::Type::kHttpResponse);
  ev.client = request_id;
  ev.code = e == Error::kForbidden ? 403 : 400;
  if (refused) ev.number = static_cast<int>(e);
  ev.text = R"({"Content-Type":"application/json"})";
  ev.data = error_body(e);
  sink_->push(std::move(ev));
}

std::string Server::open_packet(const Session& session) const {
  const Config& c = config(session.worker_);
  nlohmann::json upgrades = nlohmann::json::array();
  if (session.transport_ == Session::Transport::kPolling && c.websocket && c.allow_upgrades) {
    upgrades.push_back("websocket");
  }
  return "0" + nlohmann::json{{"sid", public_id(session.id_, 'e')},
                              {"upgrades", upgrades},
                              {"pingInterval", c.ping_interval_ms},
                              {"pingTimeout", c.ping_timeout_ms},
                              {"maxPayload", c.max_payload}}
                   .dump();
}

}  // namespace sidewire::eio
