// The console's own script: times in the viewer's zone, the zone sent with filters, a count
// that follows the retry form's choices, and forms that send once. No inline script anywhere.
(function () {
  "use strict";

  const pad = (n) => String(n).padStart(2, "0");
  const zoneName = (() => {
    try {
      return new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
        .formatToParts(new Date()).find((p) => p.type === "timeZoneName").value;
    } catch (e) {
      return "";
    }
  })();

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
      const minute = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      el.textContent = el.hasAttribute("data-short") ? `${day} ${minute}`
        : `${day} ${minute}:${pad(d.getSeconds())} ${zoneName}`.trim();
    });
    root.querySelectorAll("[data-zone-name]").forEach((el) => { el.textContent = `(${zoneName})`; });
  }

  function zoneFields(root) {
    const minutes = String(-new Date().getTimezoneOffset());
    root.querySelectorAll("input[data-tz]").forEach((el) => { el.value = minutes; });
  }

  function retryCount(root) {
    root.querySelectorAll("form[data-retry]").forEach((form) => {
      const out = form.querySelector("[data-retry-count]");
      const update = () => {
        let n = 0;
        form.querySelectorAll("input[data-count]:checked").forEach((b) => { n += Number(b.dataset.count); });
        out.textContent = n.toLocaleString("en-US");
        form.querySelector("button[type=submit]").disabled = n === 0;
      };
      form.addEventListener("change", update);
      update();
    });
  }

  function sendOnce(root) {
    root.querySelectorAll("form[data-once]").forEach((form) => {
      form.addEventListener("submit", () => {
        // After this tick, so the button's own name and value still go with the form.
        setTimeout(() => form.querySelectorAll("button[type=submit]").forEach((b) => {
          b.disabled = true;
          b.setAttribute("aria-busy", "true");
        }), 0);
      });
    });
  }

  function enhance(root) {
    localTimes(root);
    zoneFields(root);
    retryCount(root);
    sendOnce(root);
  }

  document.addEventListener("DOMContentLoaded", () => enhance(document));
  // A page restored from the back/forward cache: its sent forms may be sent again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once] button[aria-busy]").forEach((b) => {
      b.disabled = false;
      b.removeAttribute("aria-busy");
    });
  });
  document.addEventListener("htmx:load", (event) => {
    if (event.target !== document.body) enhance(event.target);
  });
})();
