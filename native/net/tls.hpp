// Native TLS for Engine::listen (OpenSSL through Asio's SSL streams): the engine's listener
// ends TLS itself, so `https` and `wss` are served on the app's port without a proxy. Each
// connection's TLS stream is pumped, decrypted, through a socketpair whose other end takes the
// plain path of every connection (Listener::Route): the engine's own WebSocket upgrades, and
// Node's HTTP server for everything else (Next pages, API routes, long-polling). Certificates
// reload without dropping connections: new handshakes use the new context, open connections
// keep theirs. No Asio SSL type appears here, so only tls.cpp compiles those headers.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "net/listener.hpp"
#include "sidewire/engine.hpp"

namespace sidewire {

class Worker;

using TlsConfig = TlsOptions;

class TlsTerminator {
 public:
  // Throws std::runtime_error saying what OpenSSL could not use (a key that is not the
  // certificate's, unreadable PEM).
  explicit TlsTerminator(const TlsConfig& config);
  ~TlsTerminator();
  // New handshakes use `config` from now on (same errors as the constructor; on error the
  // current one stays).
  void reload(const TlsConfig& config);
  // On `worker`'s thread: the handshake on accepted `fd` (from `peer`), within kHandshakeTimeoutMs,
  // then the decrypted stream goes to `route` on a socketpair, as an accepted connection would.
  void start(Worker& worker, int fd, std::string peer, std::shared_ptr<const Listener::Route> route);

  static constexpr std::uint32_t kHandshakeTimeoutMs = 10000;
  static constexpr std::size_t kBufferSize = 16 * 1024;  // per direction: one TLS record

  struct Context;

 private:
  std::shared_ptr<Context> current() const;
  mutable std::mutex mutex_;
  std::shared_ptr<Context> context_;
};

}  // namespace sidewire
