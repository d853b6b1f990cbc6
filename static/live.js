// The home page's live reader count: one WebSocket to /live (app/live.ts), which sends the number of pages
// open right now whenever it changes. The line stays hidden until a number arrives and hides again when the
// socket closes, so a page without JavaScript, or without the socket, shows nothing wrong. This script sends
// nothing: the server closes a socket that does.
"use strict";
(() => {
  const line = document.getElementById("readers");
  const count = document.getElementById("readers-now");
  const label = document.getElementById("readers-label");
  if (!line || !count || !label || !("WebSocket" in window)) return;
  /** Reconnection delay: doubled after each failure up to a minute, back to one second after a count. */
  const FIRST_DELAY_MS = 1000;
  const MAX_DELAY_MS = 60_000;
  let delay = FIRST_DELAY_MS;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/live`);
    socket.onmessage = (event) => {
      const n = Number(event.data);
      if (!Number.isSafeInteger(n) || n < 1) return;
      count.textContent = String(n);
      label.textContent = n === 1 ? "person is" : "people are";
      line.hidden = false;
      delay = FIRST_DELAY_MS;
    };
    socket.onclose = () => {
      // A number that no longer updates would soon be wrong: hidden until the next one.
      line.hidden = true;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    };
  };
  connect();
})();
