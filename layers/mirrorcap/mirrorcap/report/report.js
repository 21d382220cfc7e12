// Interactivity for the traffic chart: bytes/packets toggle and a hover read-out. The page is fully
// readable without it; the data comes from the JSON block the server embedded.
(function () {
  "use strict";
  var figure = document.getElementById("traffic-figure");
  var dataNode = document.getElementById("timeline-data");
  if (!figure || !dataNode) {
    return;
  }
  var data = JSON.parse(dataNode.textContent);
  var svg = figure.querySelector("svg");
  var tooltip = figure.querySelector(".tooltip");
  var hoverLine = figure.querySelector(".hover-line");
  var buttons = figure.querySelectorAll(".toggle button");
  var plot = data.plot;
  figure.classList.add("interactive");

  function humanBytes(value) {
    var units = ["B", "kB", "MB", "GB", "TB"];
    var unit = 0;
    while (Math.abs(value) >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return (unit === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[unit];
  }

  function showSeries(series) {
    figure.classList.remove("show-bytes", "show-packets");
    figure.classList.add("show-" + series);
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.series === series));
    });
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      showSeries(button.dataset.series);
    });
  });

  svg.addEventListener("mousemove", function (event) {
    var box = svg.getBoundingClientRect();
    var scale = box.width / plot.width;
    var x = (event.clientX - box.left) / scale;
    var index = Math.floor((x - plot.left) / plot.binWidth);
    if (index < 0 || index >= data.packets.length) {
      tooltip.style.visibility = "hidden";
      hoverLine.style.visibility = "hidden";
      return;
    }
    var at = new Date(data.startMs + index * data.binSeconds * 1000);
    var lineX = plot.left + (index + 0.5) * plot.binWidth;
    hoverLine.setAttribute("x1", lineX);
    hoverLine.setAttribute("x2", lineX);
    hoverLine.style.visibility = "visible";
    tooltip.textContent =
      at.toISOString().substring(11, 19) + " UTC: " +
      humanBytes(data.bytes[index] / data.binSeconds) + "/s, " +
      Math.round(data.packets[index] / data.binSeconds).toLocaleString("en-US") + " packets/s";
    tooltip.style.visibility = "visible";
    var left = lineX * scale + 12;
    if (left + tooltip.offsetWidth > box.width) {
      left = lineX * scale - tooltip.offsetWidth - 12;
    }
    tooltip.style.left = left + "px";
    tooltip.style.top = "40px";
  });

  svg.addEventListener("mouseleave", function () {
    tooltip.style.visibility = "hidden";
    hoverLine.style.visibility = "hidden";
  });
})();
