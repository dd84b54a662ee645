# Installs the packages pinned in a package-lock.json, for the build (src/web and
# tests/e2e): `npm ci` in DIR, which holds copies of package.json and the lockfile.
#   cmake -DNPM=/usr/bin/npm -DDIR=... -DWHAT="the web console's Markdown libraries"
#         -DSTAMP=... -P npm_ci.cmake
# npm's own cache (~/.npm) is used first, so a rebuild needs no network. When npm
# fails (no registry, no cache) the build stops here and says why, rather than
# shipping a console without its libraries.
execute_process(
  COMMAND "${NPM}" ci --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error
  WORKING_DIRECTORY "${DIR}"
  RESULT_VARIABLE status
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR
    "npm ci failed in ${DIR} (exit ${status}):\n${output}\n"
    "The build needs ${WHAT} from the npm registry (versions pinned in the "
    "package-lock.json). Give this machine access to the registry (or to an npm "
    "cache that holds them: npm config get cache), then build again.")
endif()
file(TOUCH "${STAMP}")
