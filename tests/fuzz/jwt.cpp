// JWT verification (native/auth/jwt.*): a token comes from the network (handshake auth, query,
// header or cookie) before anything else has looked at it.
//
// Input: the bytes of a token.
// Checked:
//   - verify() never throws or crashes, and says why it refuses (a detail for every refusal);
//     a token it accepts was signed with one of its keys, so random bytes never pass;
//   - signing the input as the claims of an HS256 token with the server's secret: when the input
//     is a JSON object without the claims that are checked, the token verifies and gives back
//     exactly that object; the same token with one byte of its payload changed never verifies.
#include <string>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.hpp"
#include "fuzz_check.hpp"
#include "net/ws_codec.hpp"

namespace auth = sidewire::auth;
using json = nlohmann::json;

namespace {

constexpr const char* kSecret = "fuzzing secret";
constexpr std::int64_t kNow = 1800000000;

const auth::JwtVerifier& verifier() {
  static const auth::JwtVerifier v([] {
    auth::JwtConfig c;
    c.keys = {{"", kSecret}, {"k2", "another secret"}};
    return c;
  }());
  return v;
}

std::string b64url(std::string_view bytes) {
  std::string s = sidewire::ws::base64_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::string hs256(std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(std::string_view(kSecret).size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const auth::JwtResult r = verifier().verify(text, kNow);
  if (r.ok()) {
    FUZZ_CHECK(r.claims.is_object());
  } else {
    FUZZ_CHECK(!r.detail.empty());
  }

  const json claims = json::parse(text, nullptr, false);
  if (!claims.is_object() || claims.contains("exp") || claims.contains("nbf") || claims.contains("sub")) return 0;
  const std::string payload = claims.dump(-1, ' ', false, json::error_handler_t::replace);
  const json expected = json::parse(payload, nullptr, false);
  const std::string input = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(payload);
  const std::string token = input + "." + hs256(input);
  if (token.size() > verifier().config().max_token_bytes) return 0;
  const auth::JwtResult good = verifier().verify(token, kNow);
  FUZZ_CHECK(good.ok());
  FUZZ_CHECK(good.claims == expected);
  std::string tampered = token;
  const std::size_t at = input.find('.') + 1 + (size % (input.size() - input.find('.') - 1));
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  FUZZ_CHECK(!verifier().verify(tampered, kNow).ok());
  return 0;
}
