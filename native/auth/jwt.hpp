// JSON Web Tokens (RFC 7519) in compact JWS form (RFC 7515), verified in the engine before a
// connection costs JS anything. The cryptography is OpenSSL's; what is ours is choosing the key:
// the algorithm a token names must be one the server allows AND one its key is for, so an
// HS256 token "signed" with an RSA public key, `alg: none`, or a key of the wrong curve never
// verifies. Keys rotate by `kid`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sidewire::auth {

// One verification key: a shared secret (HS256/384/512), or a public key as PEM: SPKI
// ("PUBLIC KEY"), an X.509 certificate, or a private key whose public half is used. RSA keys
// check RS256/384/512, EC keys ES256 (P-256), ES384 (P-384) or ES512 (P-521), Ed25519 keys EdDSA.
struct JwtKey {
  std::string kid;       // empty: a key for tokens with any kid or none
  std::string material;  // the secret's bytes, or PEM text
};

struct JwtConfig {
  std::vector<JwtKey> keys;
  std::vector<std::string> algorithms;  // empty: each algorithm some key can check
  std::string issuer;                   // empty: any
  std::vector<std::string> audience;    // empty: any; else the token's aud must name one of them
  std::uint32_t clock_tolerance_s = 0;  // leeway for exp and nbf
  std::size_t max_token_bytes = 8192;
  bool require_exp = false;
};

// What a refusal tells the client (socket.io's CONNECT_ERROR data.reason, a channel's 401).
enum class JwtReason : std::uint8_t { kOk, kMissing, kInvalid, kExpired, kNotYetValid };
const char* reason_name(JwtReason r);
// The clock tokens are checked against: seconds since the epoch.
std::int64_t now_seconds();  // "ok", "missing", "invalid", "expired", "not_yet_valid"

struct JwtResult {
  JwtReason reason = JwtReason::kInvalid;
  std::string detail;           // why, for the log line (and the client's data.detail)
  nlohmann::json claims;        // the payload, when ok
  std::int64_t expires_at = 0;  // exp in seconds since the epoch, 0 without one
  bool ok() const { return reason == JwtReason::kOk; }
};

class JwtVerifier {
 public:
  // Throws std::invalid_argument for a key that is none, an unknown algorithm, "none", or an
  // allowed algorithm that no key can check.
  explicit JwtVerifier(JwtConfig config);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Any thread. `now_s`: seconds since the epoch.
  JwtResult verify(std::string_view token, std::int64_t now_s) const;
  const JwtConfig& config() const { return config_; }

 private:
  struct Key;
  JwtConfig config_;
  std::vector<std::unique_ptr<Key>> keys_;
  std::uint32_t allowed_ = 0;  // bit per algorithm
};

// JWT authentication as a server or a channel is set up for it: the verifier, where tokens
// come from, and what a verified token does. Fixed once made (shared by its connections).
struct JwtSetup {
  explicit JwtSetup(JwtConfig config) : verifier(std::move(config)) {}
  JwtVerifier verifier;
  enum class From : std::uint8_t { kAuth, kQuery, kHeader, kCookie };
  std::vector<From> from;     // where a token is looked for, in order
  std::string auth_field;     // Socket.IO: the CONNECT's auth[auth_field]
  std::string query_param;    // "" unless read from the query
  bool header = false;        // Authorization: Bearer
  std::string cookie;         // "" unless read from a cookie
  std::string user_room_prefix;
  std::string refresh_prefix;  // Socket.IO: an EVENT's JSON text starts with it when it is the refresh event

  // The token a handshake request carries at `from` (kQuery, kHeader, kCookie), "" if none.
  std::string request_token(From from, std::string_view target,
                            const std::vector<std::pair<std::string, std::string>>& headers) const;
  // The first of them in `from` order.
  std::string request_token(std::string_view target, const std::vector<std::pair<std::string, std::string>>& headers) const;
  // A fresh token for a connection whose token had `sub` and `issuer` (its refresh): verified,
  // and refused unless it names the same sub and iss; a connection without a sub refreshes
  // nothing (no other user's token may extend it).
  JwtResult verify_refresh(std::string_view token, std::string_view sub, std::string_view issuer) const;
};

// A claim's string value, "" when it is missing or not a string.
std::string claim_text(const nlohmann::json& claims, const char* key);

}  // namespace sidewire::auth
