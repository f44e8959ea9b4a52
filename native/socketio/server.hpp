// Socket.IO v5 over Engine.IO sessions: namespaces, sockets, rooms, acks, binary attachments,
// broadcasts encoded once. Events cross into JS only for namespaces JS listens on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engineio/server.hpp"
#include "adapter/cluster.hpp"
#include "adapter/local.hpp"
#include "auth/jwt.hpp"
#include "socketio/recovery.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::sio {

class Server;
struct Namespace;

// A socket recovered from an earlier connection (connectionStateRecovery): the record it took
// (its ids, rooms and last offset) until it is connected, then the logged packets it was
// replayed, which it skips when their delivery comes after.
struct RecoveredIds {
  RecoveryStore::Taken taken;
  bool replayed = false;
  std::uint64_t replayed_upto = 0;
  // Restored from the fleet (the streams adapter) instead of this engine's store: what it
  // missed, framed, and its socket.data as the session kept it.
  bool from_cluster = false;
  std::vector<ws::SharedFrame> frames;
  std::string data_json;
};

using JwtSetup = auth::JwtSetup;
// The refusal counter of a token refused for `reason` (engine.stats().limits).
Limit token_limit(auth::JwtReason reason);

// Who a socket's token says it is, and until when.
struct SocketUser {
  nlohmann::json claims;
  std::string sub;
  std::int64_t expires_at = 0;  // seconds since the epoch, 0: never
  std::shared_ptr<const JwtSetup> jwt;
};

// One namespace on one session.
struct Socket {
  ClientId id = 0;
  eio::Session* session = nullptr;
  Namespace* nsp = nullptr;
  std::vector<Membership<Socket>> rooms;  // the namespace's adapter keeps it
  std::uint32_t everyone = 0;  // slot in the namespace's everyone room
  std::uint32_t stamp = 0;     // selection stamp
  bool connected = false;
  bool js_knows = false;       // a kSioConnect went to JS for it
  std::unique_ptr<RecoveredIds> recovered;  // only for a socket recovered from an earlier connection
  std::unique_ptr<SocketUser> user;         // only with JWT authentication
  std::unique_ptr<guard::Buckets> buckets;  // limits.events: made by its first limited event

  std::vector<Membership<Socket>>& memberships() { return rooms; }
  std::uint32_t& everyone_slot() { return everyone; }
  std::uint32_t& mark() { return stamp; }
  bool selectable() const { return connected; }
};

using SocketRooms = adapter::LocalAdapter<Socket>;

struct Namespace {
  std::string name;
  std::uint32_t index = 0;
  std::atomic<bool> hook_connect{false};
  std::atomic<bool> hook_events{false};
  std::atomic<std::uint64_t> sockets{0};
  std::unique_ptr<SocketRooms> rooms;  // its local adapter
};

// What a broadcast (or a utility method) selects: the union of `rooms` (all sockets when
// empty) minus the members of `except`.
struct Selection {
  std::uint32_t nsp = 0;
  std::vector<std::string> rooms;
  std::vector<std::string> except;
};

class Server final : public eio::Listener {
 public:
  Server(eio::Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Metrics& metrics);
  ~Server() override;

  eio::Server& engineio() { return *eio_; }
  void set_dynamic_namespaces(bool on) { dynamic_ = on; }
  void set_max_rooms(std::uint32_t n) { max_rooms_ = n; }
  // socket.io-msgpack-parser instead of the default parser, for every packet both ways.
  void set_msgpack(bool on) { msgpack_ = on; }
  bool msgpack() const { return msgpack_.load(std::memory_order_relaxed); }
  void set_recovery(const RecoveryConfig& config) { recovery_.configure(config); }
  // JWT authentication for every namespace (nullptr: none), and the namespaces that have their
  // own (nullptr there: none). Sessions opened before it keep what their handshake had.
  void set_jwt(std::shared_ptr<const JwtSetup> jwt,
               std::unordered_map<std::string, std::shared_ptr<const JwtSetup>> by_namespace = {});
  RecoveryStore::Stats recovery_stats() { return recovery_.stats(); }

  static constexpr std::size_t kMaxNamespaces = 4096;               // in all, dynamic ones included
  static constexpr std::size_t kMaxNamespacesPerConnection = 100;  // sockets of one Engine.IO session
  static constexpr std::uint32_t kMaxAttachments = 64;              // binary attachments of one packet

  // From JS (any thread); the work is posted to the owning I/O thread(s).
  std::uint32_t add_namespace(const std::string& name);
  void set_hooks(std::uint32_t nsp, bool connect, bool events);
  // `turn`: the turn of JS's event loop that sent it (0: unknown), see send_to.
  void accept(ClientId socket, std::uint32_t nsp, std::uint32_t turn = 0);
  void reject(ClientId socket, std::string data_json);
  void emit(ClientId socket, std::string data_json, std::vector<std::string> attachments, std::int64_t ack_id,
            bool is_volatile, std::uint32_t nsp = UINT32_MAX, bool compress = true, std::uint32_t turn = 0);
  void ack(ClientId socket, std::int64_t ack_id, std::string data_json, std::vector<std::string> attachments,
           std::uint32_t turn = 0);
  // `local`: not carried to the other nodes of a cluster (socket.io's `local` flag, and what
  // came from another node).
  // `offset`: the one the fleet gave it (the streams adapter), appended for clients that recover.
  void broadcast(Selection selection, std::string data_json, std::vector<std::string> attachments,
                 std::int64_t ack_id, bool is_volatile, bool compress = true, std::uint32_t turn = 0,
                 bool local = false, const std::string* offset = nullptr);
  // The cluster adapter: where broadcasts go besides this node, and one from another node
  // (its namespace by name; unknown namespaces have no sockets here).
  void set_cluster(adapter::Cluster* cluster) { cluster_.store(cluster); }
  void deliver_remote(adapter::SioBroadcast&& b);
  std::uint64_t room_size(std::string_view nsp, const std::string& room) const {
    const Namespace* n = namespace_named(nsp);
    return n ? n->rooms->size(room) : 0;
  }
  std::optional<std::uint32_t> namespace_index(std::string_view name) const {
    const Namespace* n = namespace_named(name);
    return n ? std::optional<std::uint32_t>(n->index) : std::nullopt;
  }
  void join(ClientId socket, std::vector<std::string> rooms);
  void leave(ClientId socket, std::string room);
  void disconnect(ClientId socket, bool close);
  void close_all();
  void sockets_join(Selection selection, std::vector<std::string> rooms);
  void sockets_leave(Selection selection, std::vector<std::string> rooms);
  void disconnect_sockets(Selection selection, bool close);
  void fetch_sockets(std::uint64_t request_id, Selection selection);
  SocketIoStats stats() const;

  // eio::Listener (I/O thread)
  void on_message(eio::Session& session, bool binary, std::string data) override;
  void on_close(eio::Session& session, std::string_view reason) override;
  void on_handshake(eio::Session& session, std::string_view target,
                    const std::vector<std::pair<std::string, std::string>>& headers) override;

 private:
  struct PerWorker {
    std::unordered_map<ClientId, Socket*> sockets;
    std::unordered_map<ClientId, std::string> pending_names;  // namespace asked for, until connected
    std::uint32_t swept_at = 0;  // the last look for expired tokens
  };

 public:
  struct Outgoing;  // a packet framed once: its header frame and attachment frames

 private:
  Namespace* namespace_at(std::uint32_t index) const;
  Namespace* namespace_named(std::string_view name) const;
  void on_packet(eio::Session& session, int type, std::string nsp, std::int64_t ack_id, std::string data,
                 std::vector<std::string> attachments);
  void on_connect(eio::Session& session, std::string_view nsp_name, std::string auth);
  // The rest of a CONNECT once any recovery was looked up: the engine completes it, or JS decides.
  void continue_connect(Socket& socket, Namespace* nsp, std::string_view nsp_name, std::string auth);
  void restore_from_fleet(Socket& socket, Namespace& nsp, adapter::RestoredSession restored);
  // Sessions and missed packets are the fleet's (the streams adapter with connectionStateRecovery).
  bool fleet_sessions() const {
    adapter::Cluster* c = cluster_.load(std::memory_order_acquire);
    return c && c->keeps_sessions() && recovery_.enabled();
  }
  void violation(eio::Session& session, const std::string& what, const std::string& sio_error);
  std::shared_ptr<const JwtSetup> jwt() const {
    std::lock_guard lock(jwt_mutex_);
    return jwt_;
  }
  // The setup a CONNECT to `nsp` is checked with.
  std::shared_ptr<const JwtSetup> jwt_for(std::string_view nsp) const {
    std::lock_guard lock(jwt_mutex_);
    if (auto it = jwt_namespaces_.find(std::string(nsp)); it != jwt_namespaces_.end()) return it->second;
    return jwt_;
  }
  // Where the handshake's token is looked for: the Server's setup, or any namespace's (they
  // all read it from the same places).
  std::shared_ptr<const JwtSetup> jwt_source() const {
    std::lock_guard lock(jwt_mutex_);
    if (jwt_) return jwt_;
    for (const auto& [name, s] : jwt_namespaces_) {
      if (s) return s;
    }
    return nullptr;
  }
  // The token of a CONNECT, from where the setup says, verified.
  auth::JwtResult authenticate(const JwtSetup& jwt, eio::Session& session, const std::string& auth) const;
  // The refresh event: a fresh token for the same user, answered by its ack.
  void refresh_token(Socket& socket, const std::string& data, std::int64_t ack_id);
  // Sockets whose token expired are disconnected ("token expired").
  void sweep_expired(Worker& worker);
  // limits.idleTimeoutMs: sessions with no Socket.IO packet for that long are closed.
  void sweep_idle(Worker& worker, std::uint32_t now);
  // limits.events: false when the event is over its rate (dropped; told or disconnected by policy).
  bool admit_event(Socket& socket, std::string_view data);
  // A session recovered with another user's token is not recovered (JWT's user rooms tell).
  void forget_other_users_session(Socket& socket);
  // socket.id and the private id (connectionStateRecovery) of a socket: derived from its
  // numeric id, or the ones it recovered.
  std::string sid_of(const Socket& socket) const;
  std::string pid_of(const Socket& socket) const;
  ws::SharedFrame control_frame(int type, std::string_view nsp, std::string_view data) const;
  // `replay_bound`: the last logged packet a recovered socket is replayed (UINT64_MAX: up to now,
  // when the engine accepts it alone; JS's accept sets it at its call).
  void complete_connect(Socket& socket, Namespace& nsp, std::uint32_t turn = 0, std::uint64_t replay_bound = UINT64_MAX);
  void remove_socket(Socket& socket, std::string_view reason, bool notify_js);
  // `reason`: what JS's 'disconnect' says (and the session's close, when it closes).
  void disconnect_socket(Socket& socket, bool close, std::string_view reason = "server namespace disconnect");
  Socket* find(Worker& worker, ClientId id);
  bool send_to(Socket& socket, const Outgoing& out, bool is_volatile, std::uint32_t turn = 0);
  void join_rooms(Socket& socket, const std::vector<std::string>& rooms);

 public:
  template <typename F>
  void select(Worker& worker, const Selection& selection, F&& f);

 private:
  template <typename F>
  void on_socket(ClientId id, F&& f);
  template <typename F>
  void on_each_worker(F&& f);
  void socket_changed(Namespace& nsp, const Socket& socket, bool connected);

  std::vector<Worker*> workers_;
  std::shared_ptr<EventSink> sink_;
  Metrics& metrics_;
  std::unique_ptr<eio::Server> eio_;
  std::vector<std::unique_ptr<PerWorker>> per_worker_;
  mutable std::mutex namespaces_mutex_;
  std::vector<std::unique_ptr<Namespace>> namespaces_;  // reserved: never reallocates
  std::atomic<std::uint32_t> namespace_count_{0};
  std::atomic<bool> dynamic_{false};
  std::atomic<std::uint32_t> max_rooms_{10000};
  std::atomic<bool> msgpack_{false};
  std::atomic<adapter::Cluster*> cluster_{nullptr};
  std::atomic<std::uint64_t> next_socket_{1};
  mutable RecoveryStore recovery_;
  mutable std::mutex jwt_mutex_;
  std::shared_ptr<const JwtSetup> jwt_;
  std::unordered_map<std::string, std::shared_ptr<const JwtSetup>> jwt_namespaces_;
  std::atomic<bool> jwt_on_{false};
  std::atomic<bool> idle_seen_{false};  // a configuration had limits.idleTimeoutMs
};

}  // namespace sidewire::sio
