#include "encoders.hpp"

#include <catch2/catch.hpp>

#include <string>

using encoders::to_base64;
using encoders::to_morse;
using encoders::to_rot13;

namespace {
constexpr const char* sample = "This is a multi-system test";
}

TEST_CASE("the sample sentence encodes as the reference client prints it", "[encoders]") {
  CHECK(to_morse(sample) == "- .... .. ... / .. ... / .- / -- ..- .-.. - .. -....- ... -.-- ... - . -- / - . ... -");
  CHECK(to_base64(sample) == "VGhpcyBpcyBhIG11bHRpLXN5c3RlbSB0ZXN0");
  CHECK(to_rot13(sample) == "Guvf vf n zhygv-flfgrz grfg");
}

TEST_CASE("base64 matches the RFC 4648 test vectors", "[encoders][base64]") {
  CHECK(to_base64("") == "");
  CHECK(to_base64("f") == "Zg==");
  CHECK(to_base64("fo") == "Zm8=");
  CHECK(to_base64("foo") == "Zm9v");
  CHECK(to_base64("foob") == "Zm9vYg==");
  CHECK(to_base64("fooba") == "Zm9vYmE=");
  CHECK(to_base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64 encodes arbitrary bytes including NUL", "[encoders][base64]") {
  CHECK(to_base64(std::string("\0\xff\xfe", 3)) == "AP/+");
}

TEST_CASE("base64 of a long input has the padded length", "[encoders][base64]") {
  std::string big(10'000'001, 'x');  // spans several internal chunks
  auto out = to_base64(big);
  CHECK(out.size() == (big.size() + 2) / 3 * 4);
  CHECK(out.substr(0, 4) == "eHh4");
  CHECK(out.substr(out.size() - 4) == "eHg=");  // 10000001 = 3k + 2: "xx" is padded once
}

TEST_CASE("rot13 is its own inverse", "[encoders][rot13]") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  CHECK(to_rot13(to_rot13(all)) == all);
  CHECK(to_rot13(to_rot13(sample)) == sample);
}

TEST_CASE("rot13 shifts ASCII letters and leaves everything else", "[encoders][rot13]") {
  CHECK(to_rot13("abcdefghijklmnopqrstuvwxyz") == "nopqrstuvwxyzabcdefghijklm");
  CHECK(to_rot13("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "NOPQRSTUVWXYZABCDEFGHIJKLM");
  CHECK(to_rot13("0123456789 .,!?-_\t\n") == "0123456789 .,!?-_\t\n");
  CHECK(to_rot13("caf\xc3\xa9") == "pns\xc3\xa9");
}

TEST_CASE("morse is case-free", "[encoders][morse]") {
  CHECK(to_morse("sos") == "... --- ...");
  CHECK(to_morse("SoS") == to_morse("sos"));
}

TEST_CASE("morse encodes digits and the standard punctuation", "[encoders][morse]") {
  CHECK(to_morse("0123456789") == "----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----.");
  CHECK(to_morse(".,?'!/()&:;=+-_\"$@") ==
        ".-.-.- --..-- ..--.. .----. -.-.-- -..-. -.--. -.--.- .-... ---... -.-.-. -...- "
        ".-.-. -....- ..--.- .-..-. ...-..- .--.-.");
}

TEST_CASE("morse drops characters that have no code", "[encoders][morse]") {
  CHECK(to_morse("a#b") == ".- -...");
  CHECK(to_morse("caf\xc3\xa9") == "-.-. .- ..-.");
  CHECK(to_morse("a # b") == ".- / -...");  // a word of dropped characters leaves no " / / "
  CHECK(to_morse("#%*") == "");
}

TEST_CASE("morse folds repeated spaces into one word break", "[encoders][morse]") {
  CHECK(to_morse("a    b") == ".- / -...");
  CHECK(to_morse("a \t\n b") == ".- / -...");
}

TEST_CASE("morse has no leading or trailing separators", "[encoders][morse]") {
  CHECK(to_morse("   e  ") == ".");
  CHECK(to_morse("") == "");
  CHECK(to_morse("   ") == "");
}
