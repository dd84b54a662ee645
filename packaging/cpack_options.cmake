# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE): the components the
# package is made of. "main" is shared; "deb" and "rpm" hold what differs (the unit
# directory, the changelog's name). One package each, not one per component.
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_INSTALL_CMAKE_PROJECTS
      "${CPACK_TICKETAID_BUILD_DIR};ticketaid;main;/"
      "${CPACK_TICKETAID_BUILD_DIR};ticketaid;deb;/")
elseif(CPACK_GENERATOR STREQUAL "RPM")
  set(CPACK_INSTALL_CMAKE_PROJECTS
      "${CPACK_TICKETAID_BUILD_DIR};ticketaid;main;/"
      "${CPACK_TICKETAID_BUILD_DIR};ticketaid;rpm;/")
endif()
