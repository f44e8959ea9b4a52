#include "engineio/ids.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace sidewire::eio {

IdCipher::IdCipher() {
  if (RAND_bytes(key_, sizeof key_) != 1) throw std::runtime_error("no random bytes for the id key");
}

bool IdCipher::run(bool encrypting, const std::uint8_t in[16], std::uint8_t out[16]) const {
  // A context per call: EVP contexts are not shared between threads, and ids are made once per
  // connection and read once per request, far from the message path.
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) return false;
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr, key_, nullptr, encrypting ? 1 : 0) != 1) return false;
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  int n = 0;
  if (EVP_CipherUpdate(ctx.get(), out, &n, in, 16) != 1 || n != 16) return false;
  return true;
}

bool IdCipher::encrypt(const std::uint8_t in[16], std::uint8_t out[16]) const { return run(true, in, out); }
bool IdCipher::decrypt(const std::uint8_t in[16], std::uint8_t out[16]) const { return run(false, in, out); }

}  // namespace sidewire::eio
