#pragma once
// One message for clients, encoded once and shared by every connection it goes to.

#include <memory>
#include <string>

namespace birdwatch {

using Frame = std::shared_ptr<const std::string>;

}  // namespace birdwatch
