"use strict";
// A link `…/#token=…` signs in without the token ever reaching a server log
// or a Referer: the fragment stays in the browser, and is wiped here.
(function () {
  const hash = window.location.hash;
  if (!hash.startsWith("#token=")) return;
  const token = decodeURIComponent(hash.slice("#token=".length));
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  document.getElementById("token").value = token;
  document.getElementById("login").submit();
})();
