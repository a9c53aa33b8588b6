# CMake generated Testfile for 
# Source directory: /work/main
# Build directory: /work/main/build
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
subdirs("src/common")
subdirs("src/crypto")
subdirs("src/tee")
subdirs("src/attest")
subdirs("src/wasm")
subdirs("src/host")
subdirs("src/executor")
subdirs("src/core")
subdirs("src/gateway")
subdirs("src/client")
subdirs("src/cli")
subdirs("tests")
subdirs("fuzz")
subdirs("bench")
