#include "auth/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "net/http_upgrade.hpp"
#include "net/ws_codec.hpp"

namespace sidewire::auth {

using json = nlohmann::json;

namespace {

enum class KeyKind : std::uint8_t { kSecret, kRsa, kP256, kP384, kP521, kEd25519 };

struct Algorithm {
  const char* name;
  KeyKind kind;
  const EVP_MD* (*digest)();  // nullptr for EdDSA
  std::size_t ec_size;        // bytes of r and of s (ES*), 0 otherwise
};

const Algorithm kAlgorithms[] = {
    {"HS256", KeyKind::kSecret, EVP_sha256, 0}, {"HS384", KeyKind::kSecret, EVP_sha384, 0},
    {"HS512", KeyKind::kSecret, EVP_sha512, 0}, {"RS256", KeyKind::kRsa, EVP_sha256, 0},
    {"RS384", KeyKind::kRsa, EVP_sha384, 0},    {"RS512", KeyKind::kRsa, EVP_sha512, 0},
    {"ES256", KeyKind::kP256, EVP_sha256, 32},  {"ES384", KeyKind::kP384, EVP_sha384, 48},
    {"ES512", KeyKind::kP521, EVP_sha512, 66},  {"EdDSA", KeyKind::kEd25519, nullptr, 0},
};
constexpr std::size_t kAlgorithmCount = sizeof(kAlgorithms) / sizeof(kAlgorithms[0]);

int algorithm_index(std::string_view name) {
  for (std::size_t i = 0; i < kAlgorithmCount; ++i) {
    if (name == kAlgorithms[i].name) return static_cast<int>(i);
  }
  return -1;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey read_pem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return nullptr;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    return Pkey(cert ? X509_get_pubkey(cert.get()) : nullptr);
  }
  if (pem.find("PRIVATE KEY-----") != std::string::npos) {
    return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
  }
  return Pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
}

KeyKind kind_of(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return KeyKind::kRsa;
    case EVP_PKEY_ED25519: return KeyKind::kEd25519;
    case EVP_PKEY_EC: {
      char group[64] = {0};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) != 1) break;
      const std::string_view g(group, len);
      if (g == "prime256v1" || g == "P-256") return KeyKind::kP256;
      if (g == "secp384r1" || g == "P-384") return KeyKind::kP384;
      if (g == "secp521r1" || g == "P-521") return KeyKind::kP521;
      throw std::invalid_argument("jwt: an EC key on curve " + std::string(g) + ", which no JWS algorithm uses");
    }
    default: break;
  }
  throw std::invalid_argument("jwt: a public key of a type no JWS algorithm here uses (RSA, EC or Ed25519)");
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// base64url without padding (RFC 7515 section 2), strictly: no padding, no other characters, and
// the unused bits of the last character zero, so that one token has one spelling.
bool base64url_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  if (!in.empty() && in.size() % 4 != 0) {
    const int last = base64url_value(in.back());
    const int unused = in.size() % 4 == 2 ? 0x0f : 0x03;
    if (last < 0 || (last & unused) != 0) return false;
  }
  std::string std_alphabet;
  std_alphabet.reserve(in.size() + 3);
  for (char c : in) {
    const int v = base64url_value(c);
    if (v < 0) return false;
    std_alphabet.push_back(v == 62 ? '+' : v == 63 ? '/' : c);
  }
  while (std_alphabet.size() % 4) std_alphabet.push_back('=');
  return ws::base64_decode(std_alphabet, out);
}

bool digest_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view data, const unsigned char* sig, std::size_t sig_len) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

// JWS carries an ECDSA signature as r || s, each of the curve's size; OpenSSL takes DER.
bool ecdsa_verify(EVP_PKEY* key, const Algorithm& alg, std::string_view data, const std::string& sig) {
  if (sig.size() != 2 * alg.ec_size) return false;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> es(ECDSA_SIG_new(), ECDSA_SIG_free);
  if (!es) return false;
  const auto* bytes = reinterpret_cast<const unsigned char*>(sig.data());
  BIGNUM* r = BN_bin2bn(bytes, static_cast<int>(alg.ec_size), nullptr);
  BIGNUM* s = BN_bin2bn(bytes + alg.ec_size, static_cast<int>(alg.ec_size), nullptr);
  if (!r || !s || ECDSA_SIG_set0(es.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(es.get(), &der);
  if (der_len <= 0) return false;
  const bool ok = digest_verify(key, alg.digest(), data, der, static_cast<std::size_t>(der_len));
  OPENSSL_free(der);
  return ok;
}

// A NumericDate (RFC 7519 section 2): a JSON number of seconds, fractions allowed.
bool numeric_date(const json& v, std::int64_t& out) {
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    out = u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d > 9.2e18 || d < -9.2e18) return false;
    out = static_cast<std::int64_t>(std::floor(d));
    return true;
  }
  return false;
}

// Text from a token, fit for a log line and the client's reply: at most `max` bytes, control
// characters and non-ASCII as '?'.
std::string printable(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

JwtResult refuse(JwtReason reason, std::string detail) {
  JwtResult r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

}  // namespace

struct JwtVerifier::Key {
  std::string kid;
  KeyKind kind;
  std::string secret;
  Pkey pkey;
};

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* reason_name(JwtReason r) {
  switch (r) {
    case JwtReason::kOk: return "ok";
    case JwtReason::kMissing: return "missing";
    case JwtReason::kInvalid: return "invalid";
    case JwtReason::kExpired: return "expired";
    case JwtReason::kNotYetValid: return "not_yet_valid";
  }
  return "invalid";
}

JwtVerifier::JwtVerifier(JwtConfig config) : config_(std::move(config)) {
  if (config_.keys.empty()) throw std::invalid_argument("jwt: no key (secret, publicKey or jwks)");
  std::uint32_t checkable = 0;
  for (const auto& k : config_.keys) {
    auto key = std::make_unique<Key>();
    key->kid = k.kid;
    if (k.material.find("-----BEGIN") != std::string::npos) {
      key->pkey = read_pem(k.material);
      if (!key->pkey) throw std::invalid_argument("jwt: a key that is PEM but no public key OpenSSL can read");
      key->kind = kind_of(key->pkey.get());
    } else {
      if (k.material.empty()) throw std::invalid_argument("jwt: an empty secret");
      key->kind = KeyKind::kSecret;
      key->secret = k.material;
    }
    for (std::size_t i = 0; i < kAlgorithmCount; ++i) {
      if (kAlgorithms[i].kind == key->kind) checkable |= 1u << i;
    }
    keys_.push_back(std::move(key));
  }
  if (config_.algorithms.empty()) {
    allowed_ = checkable;
  } else {
    for (const auto& name : config_.algorithms) {
      const int i = algorithm_index(name);
      if (i < 0) throw std::invalid_argument("jwt: algorithm " + name + " is not supported (none never is)");
      if (!(checkable & (1u << i))) throw std::invalid_argument("jwt: algorithm " + name + " has no key to check it");
      allowed_ |= 1u << i;
    }
  }
}

JwtVerifier::~JwtVerifier() = default;

JwtResult JwtVerifier::verify(std::string_view token, std::int64_t now_s) const {
  if (token.empty()) return refuse(JwtReason::kMissing, "no token");
  if (token.size() > config_.max_token_bytes) return refuse(JwtReason::kInvalid, "token over " + std::to_string(config_.max_token_bytes) + " bytes");
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return refuse(JwtReason::kInvalid, "not a compact JWS (three parts)");
  }
  const std::string_view signing_input = token.substr(0, d2);
  std::string header_text;
  std::string payload_text;
  std::string signature;
  if (!base64url_decode(token.substr(0, d1), header_text) || !base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), payload_text) ||
      !base64url_decode(token.substr(d2 + 1), signature)) {
    return refuse(JwtReason::kInvalid, "not base64url");
  }
  const json header = json::parse(header_text, nullptr, false);
  if (!header.is_object()) return refuse(JwtReason::kInvalid, "header is not a JSON object");
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return refuse(JwtReason::kInvalid, "header has no alg");
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  const int alg_index = algorithm_index(alg_name);
  if (alg_index < 0 || !(allowed_ & (1u << alg_index))) {
    return refuse(JwtReason::kInvalid, "algorithm " + printable(alg_name, 16) + " not allowed");
  }
  if (header.contains("crit")) return refuse(JwtReason::kInvalid, "critical header extensions are not understood");
  const Algorithm& alg = kAlgorithms[alg_index];
  const std::string* kid = nullptr;
  if (auto it = header.find("kid"); it != header.end()) {
    if (!it->is_string()) return refuse(JwtReason::kInvalid, "kid is not a string");
    kid = &it->get_ref<const std::string&>();
  }
  if (signature.empty()) return refuse(JwtReason::kInvalid, "unsigned");

  bool any_key = false;
  bool verified = false;
  for (const auto& key : keys_) {
    if (key->kind != alg.kind) continue;
    if (!key->kid.empty() && (!kid || *kid != key->kid)) continue;
    any_key = true;
    if (alg.kind == KeyKind::kSecret) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      if (!HMAC(alg.digest(), key->secret.data(), static_cast<int>(key->secret.size()),
                reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_len)) {
        continue;
      }
      verified = signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
    } else if (alg.ec_size) {
      verified = ecdsa_verify(key->pkey.get(), alg, signing_input, signature);
    } else {
      verified = digest_verify(key->pkey.get(), alg.digest ? alg.digest() : nullptr, signing_input,
                               reinterpret_cast<const unsigned char*>(signature.data()), signature.size());
    }
    if (verified) break;
  }
  if (!any_key) return refuse(JwtReason::kInvalid, kid ? "no key with kid " + printable(*kid, 64) : "no key for " + alg_name);
  if (!verified) return refuse(JwtReason::kInvalid, "bad signature");

  json claims = json::parse(payload_text, nullptr, false);
  if (!claims.is_object()) return refuse(JwtReason::kInvalid, "payload is not a JSON object");
  const std::int64_t tolerance = config_.clock_tolerance_s;
  std::int64_t exp = 0;
  if (auto it = claims.find("exp"); it != claims.end()) {
    if (!numeric_date(*it, exp)) return refuse(JwtReason::kInvalid, "exp is not a NumericDate");
    if (now_s - tolerance >= exp) return refuse(JwtReason::kExpired, "expired");
  } else if (config_.require_exp) {
    return refuse(JwtReason::kInvalid, "no exp");
  }
  if (auto it = claims.find("nbf"); it != claims.end()) {
    std::int64_t nbf = 0;
    if (!numeric_date(*it, nbf)) return refuse(JwtReason::kInvalid, "nbf is not a NumericDate");
    if (now_s + tolerance < nbf) return refuse(JwtReason::kNotYetValid, "not valid before " + std::to_string(nbf));
  }
  if (!config_.issuer.empty()) {
    auto it = claims.find("iss");
    if (it == claims.end() || !it->is_string() || it->get_ref<const std::string&>() != config_.issuer) {
      return refuse(JwtReason::kInvalid, "issuer");
    }
  }
  if (!config_.audience.empty()) {
    auto named = [&](const json& v) {
      return v.is_string() &&
             std::find(config_.audience.begin(), config_.audience.end(), v.get_ref<const std::string&>()) != config_.audience.end();
    };
    auto it = claims.find("aud");
    bool ok = false;
    if (it != claims.end()) {
      if (it->is_array()) {
        ok = std::any_of(it->begin(), it->end(), named);
      } else {
        ok = named(*it);
      }
    }
    if (!ok) return refuse(JwtReason::kInvalid, "audience");
  }
  if (auto it = claims.find("sub"); it != claims.end() && !it->is_string()) {
    return refuse(JwtReason::kInvalid, "sub is not a string");
  }
  JwtResult r;
  r.reason = JwtReason::kOk;
  r.claims = std::move(claims);
  r.expires_at = exp;
  return r;
}

std::string JwtSetup::request_token(From f, std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers) const {
  switch (f) {
    case From::kQuery:
      if (query_param.empty()) return {};
      return http::query_param(http::query_of(target), query_param).value_or(std::string());
    case From::kHeader:
      if (!header) return {};
      for (const auto& [name, value] : headers) {
        if (!http::iequals(name, "authorization")) continue;
        const std::string_view v = http::trim(value);
        if (v.size() > 7 && http::iequals(v.substr(0, 7), "bearer ")) return std::string(http::trim(v.substr(7)));
      }
      return {};
    case From::kCookie:
      if (cookie.empty()) return {};
      for (const auto& [name, value] : headers) {
        if (!http::iequals(name, "cookie")) continue;
        if (auto v = http::cookie_value(value, cookie)) return std::string(*v);
      }
      return {};
    case From::kAuth: break;
  }
  return {};
}

std::string JwtSetup::request_token(std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers) const {
  for (From f : from) {
    std::string token = request_token(f, target, headers);
    if (!token.empty()) return token;
  }
  return {};
}

JwtResult JwtSetup::verify_refresh(std::string_view token, std::string_view sub, std::string_view issuer) const {
  JwtResult r;
  if (sub.empty()) {
    r.reason = JwtReason::kInvalid;
    r.detail = "the connection's token has no sub";
    return r;
  }
  r = verifier.verify(token, now_seconds());
  if (r.ok() && (claim_text(r.claims, "sub") != sub || claim_text(r.claims, "iss") != issuer)) {
    r.reason = JwtReason::kInvalid;
    r.detail = "another subject";
  }
  return r;
}

std::string claim_text(const nlohmann::json& claims, const char* key) {
  auto it = claims.find(key);
  return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace sidewire::auth
