// Asio's compiled TLS parts (BOOST_ASIO_SEPARATE_COMPILATION), built once, for the WebSocket reader only.
#include <boost/asio/ssl/impl/src.hpp>
