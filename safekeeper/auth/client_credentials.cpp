#include "auth/client_credentials.h"

#include <fstream>

namespace wp::sk {

Result<std::string> read_password_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return Status::from_errno("cannot read password file " + path, errno);
    std::string password;
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return Status::invalid("password file " + path + " is empty");
    return password;
}

}  // namespace wp::sk
