// JWT verification (auth/jwt.hpp) against tokens Node's crypto made (jwt_fixtures.inc): every
// algorithm, key rotation by kid, the claim edges, and the classic attacks.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "auth/jwt.hpp"

namespace {

#include "jwt_fixtures.inc"

using sidewire::auth::JwtConfig;
using sidewire::auth::JwtReason;
using sidewire::auth::JwtVerifier;

JwtConfig with_keys(std::initializer_list<sidewire::auth::JwtKey> keys) {
  JwtConfig c;
  c.keys = keys;
  return c;
}

JwtReason reason(const JwtVerifier& v, const std::string& token, std::int64_t now = kNow) {
  return v.verify(token, now).reason;
}

TEST(Jwt, VerifiesEveryAlgorithmAndGivesTheClaims) {
  const JwtVerifier hs(with_keys({{"", kSecret}}));
  for (const char* t : {kHS256, kHS384, kHS512}) {
    const auto r = hs.verify(t, kNow);
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.claims["sub"], "ada");
    EXPECT_EQ(r.claims["name"], "Ada");
    EXPECT_EQ(r.expires_at, kNow + 3600);
  }
  const JwtVerifier rs(with_keys({{"", kRsaA}}));
  for (const char* t : {kRS256, kRS384, kRS512}) EXPECT_TRUE(rs.verify(t, kNow).ok()) << t;
  EXPECT_TRUE(JwtVerifier(with_keys({{"", kP256}})).verify(kES256, kNow).ok());
  EXPECT_TRUE(JwtVerifier(with_keys({{"", kP384}})).verify(kES384, kNow).ok());
  EXPECT_TRUE(JwtVerifier(with_keys({{"", kP521}})).verify(kES512, kNow).ok());
  EXPECT_TRUE(JwtVerifier(with_keys({{"", kEd25519}})).verify(kEdDSA, kNow).ok());
  // A private key stands for its public half.
  EXPECT_TRUE(JwtVerifier(with_keys({{"", kRsaPrivateA}})).verify(kRS256, kNow).ok());
}

TEST(Jwt, RotatesKeysByKid) {
  const JwtVerifier v(with_keys({{"a", kRsaA}, {"b", kRsaB}}));
  EXPECT_TRUE(v.verify(kRS256KidA, kNow).ok());
  EXPECT_TRUE(v.verify(kRS256KidB, kNow).ok());
  // kid b names key B: A's signature does not pass under it, whatever else is configured.
  EXPECT_EQ(v.verify(kRS256KidBSignedByA, kNow).detail, "bad signature");
  // A token without a kid matches no key that has one.
  EXPECT_EQ(v.verify(kRS256, kNow).detail, "no key for RS256");
  // A wrong kid names no key.
  const JwtVerifier only_b(with_keys({{"b", kRsaB}}));
  EXPECT_EQ(only_b.verify(kRS256KidA, kNow).detail, "no key with kid a");
  // A key without a kid takes tokens with any kid or none.
  const JwtVerifier any(with_keys({{"", kRsaA}}));
  EXPECT_TRUE(any.verify(kRS256KidA, kNow).ok());
  EXPECT_TRUE(any.verify(kRS256, kNow).ok());
}

TEST(Jwt, ExpiryAndNotBeforeEdges) {
  JwtConfig c = with_keys({{"", kSecret}});
  const JwtVerifier v(c);
  EXPECT_EQ(reason(v, kHS256, kNow + 3599), JwtReason::kOk);
  EXPECT_EQ(reason(v, kHS256, kNow + 3600), JwtReason::kExpired);  // exp itself is too late
  EXPECT_EQ(reason(v, kHS256, kNow - 10), JwtReason::kOk);         // nbf itself is in time
  EXPECT_EQ(reason(v, kHS256, kNow - 11), JwtReason::kNotYetValid);
  c.clock_tolerance_s = 5;
  const JwtVerifier lenient(c);
  EXPECT_EQ(reason(lenient, kHS256, kNow + 3604), JwtReason::kOk);
  EXPECT_EQ(reason(lenient, kHS256, kNow + 3605), JwtReason::kExpired);
  EXPECT_EQ(reason(lenient, kHS256, kNow - 15), JwtReason::kOk);
  EXPECT_EQ(reason(lenient, kHS256, kNow - 16), JwtReason::kNotYetValid);
  // A fractional exp counts by its whole second; a string one is no date.
  EXPECT_EQ(reason(v, kFloatExp, kNow - 1), JwtReason::kOk);
  EXPECT_EQ(reason(v, kFloatExp, kNow), JwtReason::kExpired);
  EXPECT_EQ(reason(v, kStringExp), JwtReason::kInvalid);
  // Without exp a token is good unless exp is required.
  EXPECT_EQ(reason(v, kNoExp), JwtReason::kOk);
  c.require_exp = true;
  EXPECT_EQ(reason(JwtVerifier(c), kNoExp), JwtReason::kInvalid);
}

TEST(Jwt, IssuerAndAudience) {
  JwtConfig c = with_keys({{"", kSecret}});
  c.issuer = "desk";
  c.audience = {"agents", "admins"};
  const JwtVerifier v(c);
  EXPECT_TRUE(v.verify(kHS256, kNow).ok());
  EXPECT_TRUE(v.verify(kArrayAudience, kNow).ok());
  EXPECT_EQ(v.verify(kOtherAudience, kNow).detail, "audience");
  EXPECT_EQ(v.verify(kOtherIssuer, kNow).detail, "issuer");
  EXPECT_EQ(v.verify(kNoExp, kNow).detail, "issuer");  // no iss at all
}

TEST(Jwt, RefusesTheClassicAttacks) {
  const JwtVerifier hs(with_keys({{"", kSecret}}));
  const JwtVerifier rs(with_keys({{"", kRsaA}}));
  // alg none, signed or not, whatever the configuration allows.
  for (const char* t : {kNone, kNoneSigned}) {
    EXPECT_EQ(reason(hs, t), JwtReason::kInvalid);
    EXPECT_EQ(reason(rs, t), JwtReason::kInvalid);
  }
  EXPECT_THROW(JwtVerifier([] {
                 JwtConfig c = with_keys({{"", kSecret}});
                 c.algorithms = {"none"};
                 return c;
               }()),
               std::invalid_argument);
  // HS256 "signed" with the server's RSA public key: an RSA key checks RS* only.
  EXPECT_EQ(rs.verify(kHS256WithRsaPublicKey, kNow).detail, "algorithm HS256 not allowed");
  // Even when HS256 is allowed beside a secret, the PEM is never taken for one.
  {
    JwtConfig c = with_keys({{"", kRsaA}, {"", kSecret}});
    EXPECT_EQ(JwtVerifier(c).verify(kHS256WithRsaPublicKey, kNow).detail, "bad signature");
  }
  // An algorithm the server did not list.
  {
    JwtConfig c = with_keys({{"", kSecret}});
    c.algorithms = {"HS512"};
    EXPECT_EQ(JwtVerifier(c).verify(kHS256, kNow).detail, "algorithm HS256 not allowed");
  }
  // A key of the wrong curve, and an ECDSA signature in DER instead of r || s.
  EXPECT_EQ(JwtVerifier(with_keys({{"", kP384}})).verify(kES256, kNow).detail, "algorithm ES256 not allowed");
  EXPECT_EQ(JwtVerifier(with_keys({{"", kP256}})).verify(kES256Der, kNow).detail, "bad signature");
  // A tampered payload.
  EXPECT_EQ(hs.verify(kTampered, kNow).detail, "bad signature");
  // A token signed with another secret.
  EXPECT_EQ(JwtVerifier(with_keys({{"", "another secret"}})).verify(kHS256, kNow).detail, "bad signature");
  // Oversized, garbage, the wrong number of parts, padding, empty.
  EXPECT_EQ(reason(hs, std::string(9000, 'a')), JwtReason::kInvalid);
  EXPECT_EQ(hs.verify(std::string(kHS256) + std::string(9000, 'A'), kNow).detail, "token over 8192 bytes");
  for (const std::string t : {"@@@.###.$$$", "a.b", "a.b.c.d", "....", "e30.e30.", "e30=.e30.AAAA", "\xff\xfe.\x01.\x02"}) {
    EXPECT_EQ(reason(hs, t), JwtReason::kInvalid) << t;
  }
  // A kid with control characters is named printably; one token has one spelling: the same
  // header with the unused low bits of its last character set is refused.
  {
    const std::string kid_header = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFcbmIifQ";  // {"alg":"HS256","kid":"a\nb"}
    const JwtVerifier with_kid(with_keys({{"k", kSecret}}));
    EXPECT_EQ(with_kid.verify(kid_header + ".e30.AAAA", kNow).detail, "no key with kid a?b");
    std::string respelled = kid_header;
    respelled.back() = 'R';  // Q is 010000, R 010001: the same bytes
    EXPECT_EQ(with_kid.verify(respelled + ".e30.AAAA", kNow).detail, "not base64url");
  }
  std::string bad_sig(kHS256);
  bad_sig.back() = bad_sig.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(reason(hs, bad_sig), JwtReason::kInvalid);
  EXPECT_EQ(reason(hs, ""), JwtReason::kMissing);
  // Headers and payloads that are not what they must be.
  EXPECT_EQ(hs.verify(kCrit, kNow).detail, "critical header extensions are not understood");
  EXPECT_EQ(hs.verify(kPayloadNotObject, kNow).detail, "payload is not a JSON object");
  EXPECT_EQ(hs.verify(kNumericSub, kNow).detail, "sub is not a string");
}

TEST(Jwt, RefusesConfigurationsThatCannotWork) {
  EXPECT_THROW(JwtVerifier(JwtConfig{}), std::invalid_argument);
  EXPECT_THROW(JwtVerifier(with_keys({{"", ""}})), std::invalid_argument);
  EXPECT_THROW(JwtVerifier(with_keys({{"", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}})),
               std::invalid_argument);
  JwtConfig c = with_keys({{"", kSecret}});
  c.algorithms = {"RS256"};  // no RSA key to check it
  EXPECT_THROW(JwtVerifier{c}, std::invalid_argument);
  c.algorithms = {"XS256"};
  EXPECT_THROW(JwtVerifier{c}, std::invalid_argument);
}

}  // namespace
