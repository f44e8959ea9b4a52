#include "socketio/server.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "log.hpp"
#include "socketio/packet.hpp"

namespace sidewire::sio {

namespace asio = boost::asio;
using nlohmann::json;

namespace {
constexpr char kSocketTag = 's';

// The Socket.IO state of one Engine.IO session.
struct ClientState : eio::UserData {
  std::vector<std::unique_ptr<Socket>> sockets;
  struct PendingBinary {
    int type;
    std::string nsp;
    std::int64_t ack_id;
    std::string data;
    std::uint32_t remaining;
    std::vector<std::string> buffers;
    std::size_t bytes = 0;  // the packet and its attachments so far
  };
  std::unique_ptr<PendingBinary> pending;  // a binary packet waiting for its attachments
};

ClientState& state_of(eio::Session& session) {
  if (!session.user) session.user = std::make_unique<ClientState>();
  return static_cast<ClientState&>(*session.user);
}

}  // namespace

struct Server::Outgoing {
  std::vector<ws::SharedFrame> frames;  // the packet, then its attachments
};

static Server::Outgoing* make_outgoing_raw(int type, std::string_view nsp, std::int64_t ack_id, const std::string& data,
                                           const std::vector<std::string>& attachments);

Server::Server(eio::Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Metrics& metrics)
    : workers_(std::move(workers)), sink_(std::move(sink)), metrics_(metrics) {
  namespaces_.reserve(kMaxNamespaces);
  for (std::size_t i = 0; i < workers_.size(); ++i) per_worker_.push_back(std::make_unique<PerWorker>());
  eio_ = std::make_unique<eio::Server>(std::move(config), workers_, sink_, *this);
  add_namespace("/");
}

Server::~Server() = default;

// ---------------------------------------------------------------------------- namespaces

std::uint32_t Server::add_namespace(const std::string& name) {
  std::lock_guard lock(namespaces_mutex_);
  if (Namespace* n = namespace_named(name)) return n->index;
  const std::uint32_t index = namespace_count_.load();
  if (index >= kMaxNamespaces) throw std::runtime_error("too many namespaces");
  auto nsp = std::make_unique<Namespace>();
  nsp->name = name;
  nsp->index = index;
  for (std::size_t i = 0; i < workers_.size(); ++i) nsp->tables.push_back(std::make_unique<RoomTable<Socket>>());
  namespaces_.push_back(std::move(nsp));
  namespace_count_.store(index + 1, std::memory_order_release);
  return index;
}

Namespace* Server::namespace_at(std::uint32_t index) const {
  return index < namespace_count_.load(std::memory_order_acquire) ? namespaces_[index].get() : nullptr;
}

Namespace* Server::namespace_named(std::string_view name) const {
  const std::uint32_t n = namespace_count_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (namespaces_[i]->name == name) return namespaces_[i].get();
  }
  return nullptr;
}

void Server::set_hooks(std::uint32_t index, bool connect, bool events) {
  if (Namespace* n = namespace_at(index)) {
    n->hook_connect = connect;
    n->hook_events = events;
  }
}

// ---------------------------------------------------------------------------- helpers

static Server::Outgoing* make_outgoing_raw(int type, std::string_view nsp, std::int64_t ack_id, const std::string& data,
                                           const std::vector<std::string>& attachments) {
  auto* out = new Server::Outgoing();
  const bool binary = !attachments.empty();
  if (binary) type = type == kAck ? kBinaryAck : kBinaryEvent;
  out->frames.push_back(ws::make_shared_frame(
      ws::kText, encode_message(type, nsp, ack_id, static_cast<std::uint32_t>(attachments.size()), data)));
  for (const auto& a : attachments) out->frames.push_back(ws::make_shared_frame(ws::kBinary, a));
  return out;
}

Socket* Server::find(Worker& worker, ClientId id) {
  auto& sockets = per_worker_[worker.index()]->sockets;
  auto it = sockets.find(id);
  return it == sockets.end() ? nullptr : it->second;
}

template <typename F>
void Server::on_socket(ClientId id, F&& f) {
  Worker* w = workers_[worker_of(id) % workers_.size()];
  w->command([this, w, id, f = std::forward<F>(f)]() mutable {
    if (Socket* s = find(*w, id)) f(*s);
  });
}

template <typename F>
void Server::on_each_worker(F&& f) {
  for (Worker* w : workers_) {
    w->command([w, f]() mutable { f(*w); });
  }
}

template <typename F>
void Server::select(Worker& worker, const Selection& selection, F&& f) {
  Namespace* nsp = namespace_at(selection.nsp);
  if (!nsp) return;
  PerWorker& pw = *per_worker_[worker.index()];
  RoomTable<Socket>& table = *nsp->tables[worker.index()];
  std::uint32_t epoch = ++pw.epoch;
  if (epoch == 0) {  // the stamp wrapped: clear every mark once
    for (auto& [id, s] : pw.sockets) s->mark = 0;
    epoch = pw.epoch = 1;
  }
  // A room is a joined room, or a socket's own id (every socket is in the room of its id).
  auto members_of = [&](const std::string& room, auto&& g) {
    if (Room<Socket>* r = table.find(room)) {
      for (Socket* s : r->members) g(s);
      return;
    }
    ClientId id;
    if (eio_->parse_public_id(room, kSocketTag, id) && worker_of(id) % workers_.size() == worker.index()) {
      if (Socket* s = find(worker, id); s && s->nsp == nsp) g(s);
    }
  };
  for (const auto& room : selection.except) members_of(room, [&](Socket* s) { s->mark = epoch; });
  if (selection.rooms.empty()) {
    for (Socket* s : table.everyone().members) {
      if (s->mark != epoch) f(*s);
    }
    return;
  }
  for (const auto& room : selection.rooms) {
    members_of(room, [&](Socket* s) {
      if (s->mark != epoch && s->connected) {
        s->mark = epoch;
        f(*s);
      }
    });
  }
}

// As engine.io: a volatile packet goes out only if the transport can take it now, and a
// transport that JS wrote to stays unwritable for the rest of that JS turn (engine.io's write
// completes on process.nextTick at the earliest), whatever this thread has flushed meanwhile.
bool Server::send_to(Socket& socket, const Outgoing& out, bool is_volatile, std::uint32_t turn) {
  if (!socket.connected) return false;
  eio::Session& session = *socket.session;
  if (is_volatile && (!session.writable() || (turn != 0 && session.js_turn() == turn))) return false;
  for (const auto& f : out.frames) session.send(f);
  if (turn != 0) session.set_js_turn(turn);
  return true;
}

// ---------------------------------------------------------------------------- incoming

void Server::on_message(eio::Session& session, bool binary, std::string data) {
  ClientState& st = state_of(session);
  if (binary) {
    if (!st.pending) {
      metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      log().warn("session {}: binary message without a packet announcing it, closing", session.id());
      session.close("parse error");
      return;
    }
    st.pending->bytes += data.size();
    if (st.pending->bytes > session.max_payload()) {
      // One packet with its attachments is one message to socket.io: maxHttpBufferSize in all.
      count_limit(metrics_, Limit::kAttachments);
      metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      log().warn("session {}: a packet's attachments add up to more than {} bytes, closing", session.id(),
                 session.max_payload());
      st.pending.reset();
      session.close("parse error");
      return;
    }
    st.pending->buffers.push_back(std::move(data));
    if (--st.pending->remaining > 0) return;
    auto p = std::move(st.pending);
    on_packet(session, p->type, std::move(p->nsp), p->ack_id, std::move(p->data), std::move(p->buffers));
    return;
  }
  if (st.pending) {
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log().warn("session {}: packet while attachments were expected, closing", session.id());
    session.close("parse error");
    return;
  }
  Packet p;
  std::string error;
  if (!parse_packet(data, p, error, kMaxAttachments)) {
    if (error == "too many attachments") count_limit(metrics_, Limit::kAttachments);
    metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log().warn("session {}: invalid Socket.IO packet ({}), closing", session.id(), error);
    session.close("parse error");
    return;
  }
  if (p.attachments > 0) {
    st.pending = std::make_unique<ClientState::PendingBinary>(ClientState::PendingBinary{
        p.type, std::string(p.nsp), p.ack_id, std::string(p.data), p.attachments, {}, data.size()});
    return;
  }
  on_packet(session, p.type, std::string(p.nsp), p.ack_id, std::string(p.data), {});
}

static Socket* socket_for(ClientState& st, std::string_view nsp, const std::unordered_map<ClientId, std::string>& pending) {
  for (auto& s : st.sockets) {
    if (s->nsp ? s->nsp->name == nsp : [&] {
          auto it = pending.find(s->id);
          return it != pending.end() && it->second == nsp;
        }()) {
      return s.get();
    }
  }
  return nullptr;
}

void Server::on_packet(eio::Session& session, int type, std::string nsp_name, std::int64_t ack_id, std::string data,
                       std::vector<std::string> attachments) {
  ClientState& st = state_of(session);
  PerWorker& pw = *per_worker_[session.worker().index()];
  if (type == kConnect) return on_connect(session, nsp_name, std::move(data));
  Socket* socket = socket_for(st, nsp_name, pw.pending_names);
  if (type == kDisconnect) {
    if (socket) remove_socket(*socket, "client namespace disconnect", true);
    return;
  }
  if (!socket || !socket->connected) {
    log().debug("session {}: packet for namespace {} it has not joined, ignored", session.id(), nsp_name);
    return;
  }
  if (!socket->nsp->hook_events.load(std::memory_order_relaxed)) return;  // nobody listens
  Event e(type == kEvent || type == kBinaryEvent ? Event::Type::kSioEvent : Event::Type::kSioAck);
  e.client = socket->id;
  e.channel = socket->nsp->index;
  e.data = std::move(data);
  e.number = ack_id;
  e.attachments = std::move(attachments);
  sink_->push(std::move(e));
}

void Server::on_connect(eio::Session& session, std::string_view nsp_name, std::string auth) {
  ClientState& st = state_of(session);
  PerWorker& pw = *per_worker_[session.worker().index()];
  if (socket_for(st, nsp_name, pw.pending_names)) return;  // already connected or connecting
  auto refuse = [&](const char* json_message) {
    session.send(ws::make_shared_frame(ws::kText, encode_message(kConnectError, nsp_name, -1, 0, json_message)));
  };
  if (st.sockets.size() >= kMaxNamespacesPerConnection) {
    count_limit(metrics_, Limit::kNamespaces);
    log().warn("session {}: CONNECT to a namespace past {} on one connection, refused", session.id(),
               kMaxNamespacesPerConnection);
    return refuse(R"({"message":"Too many namespaces on this connection"})");
  }
  Namespace* nsp = namespace_named(nsp_name);
  if (!nsp && !dynamic_) {
    log().info("session {}: CONNECT to unknown namespace {}", session.id(), nsp_name);
    return refuse(R"({"message":"Invalid namespace"})");
  }
  if (!nsp && namespace_count_.load() >= kMaxNamespaces) {
    count_limit(metrics_, Limit::kNamespaces);
    log().warn("session {}: CONNECT to a new dynamic namespace while {} exist, refused", session.id(), kMaxNamespaces);
    return refuse(R"({"message":"Invalid namespace"})");
  }
  auto owned = std::make_unique<Socket>();
  Socket* s = owned.get();
  s->id = (next_socket_.fetch_add(1) << 8) | session.worker().index();
  s->session = &session;
  s->nsp = nsp;
  st.sockets.push_back(std::move(owned));
  pw.sockets.emplace(s->id, s);
  if (nsp && !nsp->hook_connect.load()) return complete_connect(*s, *nsp);
  // JS decides: middleware, or a dynamic namespace.
  pw.pending_names.emplace(s->id, std::string(nsp_name));
  s->js_knows = true;
  Event e(Event::Type::kSioConnect);
  e.client = s->id;
  e.channel = nsp ? nsp->index : UINT32_MAX;
  e.data = std::move(auth);
  // Names come from the network: checked as UTF-8 by the transports, and dumped with
  // replacement all the same, so that no text can make the dump throw.
  e.text = json{{"id", eio_->public_id(s->id, kSocketTag)},
                {"nsp", nsp_name},
                {"conn", session.id()},
                {"sid", eio_->public_id(session.id(), 'e')},
                {"transport", session.transport_name()}}
               .dump(-1, ' ', false, json::error_handler_t::replace);
  sink_->push(std::move(e));
}

void Server::complete_connect(Socket& socket, Namespace& nsp, std::uint32_t turn) {
  Worker& w = socket.session->worker();
  per_worker_[w.index()]->pending_names.erase(socket.id);
  socket.nsp = &nsp;
  socket.connected = true;
  nsp.tables[w.index()]->add_to_everyone(&socket);
  nsp.sockets.fetch_add(1, std::memory_order_relaxed);
  socket.session->mark_established();
  socket.session->send(ws::make_shared_frame(
      ws::kText,
      encode_message(kConnect, nsp.name, -1, 0, json{{"sid", eio_->public_id(socket.id, kSocketTag)}}.dump())));
  if (turn != 0) socket.session->set_js_turn(turn);
}

void Server::remove_socket(Socket& socket, std::string_view reason, bool notify_js) {
  Worker& w = socket.session->worker();
  PerWorker& pw = *per_worker_[w.index()];
  Namespace* nsp = socket.nsp;
  if (socket.connected) {
    RoomTable<Socket>& table = *nsp->tables[w.index()];
    table.leave_all(&socket, [nsp](const std::string& room) { nsp->counts.add(room, -1); });
    table.remove_from_everyone(&socket);
    nsp->sockets.fetch_sub(1, std::memory_order_relaxed);
    socket.connected = false;
  }
  const bool tell = notify_js && (socket.js_knows || (nsp && nsp->hook_connect.load()));
  if (tell) {
    Event e(Event::Type::kSioDisconnect);
    e.client = socket.id;
    e.channel = nsp ? nsp->index : UINT32_MAX;
    e.data.assign(reason);
    sink_->push(std::move(e));
  }
  pw.pending_names.erase(socket.id);
  pw.sockets.erase(socket.id);
  ClientState& st = state_of(*socket.session);
  for (auto it = st.sockets.begin(); it != st.sockets.end(); ++it) {
    if (it->get() == &socket) {
      st.sockets.erase(it);  // destroys `socket`
      return;
    }
  }
}

void Server::on_close(eio::Session& session, std::string_view reason) {
  ClientState& st = state_of(session);
  st.pending.reset();
  while (!st.sockets.empty()) remove_socket(*st.sockets.back(), reason, true);
}

// ---------------------------------------------------------------------------- from JS

void Server::accept(ClientId socket, std::uint32_t nsp_index, std::uint32_t turn) {
  on_socket(socket, [this, nsp_index, turn](Socket& s) {
    if (s.connected) return;
    Namespace* nsp = namespace_at(nsp_index);
    if (!nsp) return remove_socket(s, "server namespace disconnect", true);
    complete_connect(s, *nsp, turn);
  });
}

void Server::reject(ClientId socket, std::string data_json) {
  on_socket(socket, [this, data = std::move(data_json)](Socket& s) {
    if (s.connected) return;
    PerWorker& pw = *per_worker_[s.session->worker().index()];
    auto it = pw.pending_names.find(s.id);
    const std::string name = it != pw.pending_names.end() ? it->second : (s.nsp ? s.nsp->name : "/");
    s.session->send(ws::make_shared_frame(ws::kText, encode_message(kConnectError, name, -1, 0, data)));
    s.js_knows = false;  // JS refused it: no disconnect to report
    remove_socket(s, "", false);
  });
}

void Server::emit(ClientId socket, std::string data_json, std::vector<std::string> attachments, std::int64_t ack_id,
                  bool is_volatile, std::uint32_t turn) {
  on_socket(socket, [this, data = std::move(data_json), att = std::move(attachments), ack_id, is_volatile,
                     turn](Socket& s) {
    if (!s.connected) return;
    std::unique_ptr<Outgoing> out(make_outgoing_raw(kEvent, s.nsp->name, ack_id, data, att));
    send_to(s, *out, is_volatile, turn);
  });
}

void Server::ack(ClientId socket, std::int64_t ack_id, std::string data_json, std::vector<std::string> attachments) {
  on_socket(socket, [this, data = std::move(data_json), att = std::move(attachments), ack_id](Socket& s) {
    if (!s.connected) return;
    std::unique_ptr<Outgoing> out(make_outgoing_raw(kAck, s.nsp->name, ack_id, data, att));
    send_to(s, *out, false);
  });
}

void Server::broadcast(Selection selection, std::string data_json, std::vector<std::string> attachments,
                       std::int64_t ack_id, bool is_volatile, std::uint32_t turn) {
  Namespace* nsp = namespace_at(selection.nsp);
  if (!nsp) return;
  // Encoded and framed once, for every recipient on every I/O thread.
  std::shared_ptr<const Outgoing> out(make_outgoing_raw(kEvent, nsp->name, ack_id, data_json, attachments));
  auto sel = std::make_shared<const Selection>(std::move(selection));
  on_each_worker([this, out, sel, ack_id, is_volatile, turn](Worker& w) {
    std::uint64_t count = 0;
    select(w, *sel, [&](Socket& s) { count += send_to(s, *out, is_volatile, turn) ? 1 : 0; });
    if (ack_id >= 0) {
      Event e(Event::Type::kSioBroadcastCount);
      e.channel = sel->nsp;
      e.number = ack_id;
      e.client = count;
      e.code = static_cast<std::uint16_t>(workers_.size());  // how many counts make the total
      sink_->push(std::move(e));
    }
  });
}

void Server::join_rooms(Socket& s, RoomTable<Socket>& table, const std::vector<std::string>& rooms) {
  for (const auto& r : rooms) {
    if (s.rooms.size() >= max_rooms_.load(std::memory_order_relaxed) && !table.is_member(&s, r)) {
      count_limit(metrics_, Limit::kRooms);
      log().warn("socket {}: already in {} rooms, join of another refused", s.id, s.rooms.size());
      return;
    }
    if (table.join(&s, r)) s.nsp->counts.add(r, +1);
  }
}

void Server::join(ClientId socket, std::vector<std::string> rooms) {
  on_socket(socket, [this, rooms = std::move(rooms)](Socket& s) {
    if (!s.nsp) return;
    join_rooms(s, *s.nsp->tables[s.session->worker().index()], rooms);
  });
}

void Server::leave(ClientId socket, std::string room) {
  on_socket(socket, [room = std::move(room)](Socket& s) {
    if (!s.nsp) return;
    if (s.nsp->tables[s.session->worker().index()]->leave(&s, room)) s.nsp->counts.add(room, -1);
  });
}

void Server::disconnect_socket(Socket& s, bool close) {
  eio::Session& session = *s.session;
  if (close) {
    // As socket.io: every socket of the connection is told, then the connection closes.
    ClientState& st = state_of(session);
    while (!st.sockets.empty()) {
      Socket& each = *st.sockets.back();
      if (each.connected) {
        session.send(ws::make_shared_frame(ws::kText, encode_message(kDisconnect, each.nsp->name, -1, 0, "")));
      }
      remove_socket(each, "server namespace disconnect", true);
    }
    session.close_gracefully("forced server close");
    return;
  }
  if (s.connected) session.send(ws::make_shared_frame(ws::kText, encode_message(kDisconnect, s.nsp->name, -1, 0, "")));
  remove_socket(s, "server namespace disconnect", true);
}

void Server::disconnect(ClientId socket, bool close) {
  on_socket(socket, [this, close](Socket& s) { disconnect_socket(s, close); });
}

void Server::close_all() { eio_->close_all("server shutting down"); }

// Selections that change rooms collect their sockets first: changing a room while walking it
// would move members under the walk.
static std::vector<ClientId> collect(Server& server, auto&& select_fn) {
  std::vector<ClientId> ids;
  select_fn([&](Socket& s) { ids.push_back(s.id); });
  (void)server;
  return ids;
}

void Server::sockets_join(Selection selection, std::vector<std::string> rooms) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  auto list = std::make_shared<const std::vector<std::string>>(std::move(rooms));
  on_each_worker([this, sel, list](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) join_rooms(*s, *s->nsp->tables[w.index()], *list);
    }
  });
}

void Server::sockets_leave(Selection selection, std::vector<std::string> rooms) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  auto list = std::make_shared<const std::vector<std::string>>(std::move(rooms));
  on_each_worker([this, sel, list](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) {
        RoomTable<Socket>& table = *s->nsp->tables[w.index()];
        for (const auto& r : *list) {
          if (table.leave(s, r)) s->nsp->counts.add(r, -1);
        }
      }
    }
  });
}

void Server::disconnect_sockets(Selection selection, bool close) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  on_each_worker([this, sel, close](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) disconnect_socket(*s, close);
    }
  });
}

void Server::fetch_sockets(std::uint64_t request_id, Selection selection) {
  struct Job {
    std::mutex mutex;
    json result = json::array();
    std::atomic<std::size_t> remaining;
  };
  auto job = std::make_shared<Job>();
  job->remaining = workers_.size();
  auto sel = std::make_shared<const Selection>(std::move(selection));
  on_each_worker([this, sel, job, request_id](Worker& w) {
    json part = json::array();
    select(w, *sel, [&](Socket& s) {
      json rooms = json::array({eio_->public_id(s.id, kSocketTag)});
      for (const auto& m : s.rooms) rooms.push_back(m.room->name);
      part.push_back({{"id", eio_->public_id(s.id, kSocketTag)},
                      {"socket", s.id},
                      {"conn", s.session->id()},
                      {"rooms", std::move(rooms)}});
    });
    {
      std::lock_guard lock(job->mutex);
      for (auto& item : part) job->result.push_back(std::move(item));
    }
    if (job->remaining.fetch_sub(1) == 1) {
      Event e(Event::Type::kSioFetch);
      e.number = static_cast<std::int64_t>(request_id);
      e.data = job->result.dump();
      sink_->push(std::move(e));
    }
  });
}

SocketIoStats Server::stats() const {
  SocketIoStats s;
  s.sessions = eio_->session_count();
  const std::uint32_t n = namespace_count_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    const Namespace& nsp = *namespaces_[i];
    s.sockets += nsp.sockets.load();
    s.namespaces.push_back({nsp.name, nsp.sockets.load(), nsp.counts.all()});
  }
  return s;
}

}  // namespace sidewire::sio
