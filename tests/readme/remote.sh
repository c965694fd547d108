# Sourced by the README test before the block of a client on another host:
# the system's host is 10.0.0.5, an address of the test's own network
# namespace, with a system on it running the block's morse.
ip addr add 10.0.0.5/32 dev lo
troupe start --port 1900 --bind 10.0.0.5
troupe --system 10.0.0.5:1900 load build/packages/encoders-1.0.0.tpkg
troupe --system 10.0.0.5:1900 spawn Morse --name morse
