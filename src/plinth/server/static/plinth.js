/* Plinth UI behaviour: charts (uPlot), copy buttons, the project switcher.
   No inline scripts anywhere: pages describe what they need in data- attributes. */
(function () {
  "use strict";

  var palette = { bar: "rgba(37, 99, 235, 0.75)", stroke: "#1d4ed8", grid: "#e5e7eb", text: "#374151" };

  function barChart(el, spec) {
    var labels = spec.labels, xs = labels.map(function (_, i) { return i; });
    var max = Math.max.apply(null, spec.values.concat([1]));
    var opts = {
      width: Math.max(el.clientWidth, 320),
      height: spec.height || 220,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: [-0.5, labels.length - 0.5] },
        y: { range: [0, Math.ceil(max * 1.15)] }
      },
      axes: [
        {
          stroke: palette.text, grid: { show: false }, ticks: { show: false },
          splits: function () { return xs; },
          values: function (u, splits) { return splits.map(function (i) { return labels[i] || ""; }); }
        },
        {
          stroke: palette.text, grid: { stroke: palette.grid }, ticks: { show: false },
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],  // counts: whole ticks
          values: function (u, splits) { return splits.map(function (v) { return String(Math.round(v)); }); }
        }
      ],
      series: [
        {},
        {
          label: spec.label || "count", fill: palette.bar, stroke: palette.stroke, width: 1,
          points: { show: false },
          paths: uPlot.paths.bars({ size: [0.6, 80] })
        }
      ]
    };
    return new uPlot(opts, [xs, spec.values], el);
  }

  function lineChart(el, spec) {
    var series = [{}].concat((spec.series || []).map(function (s, i) {
      return { label: s.label, stroke: s.color || ["#2563eb", "#dc2626", "#16a34a", "#9333ea"][i % 4], width: 2, spanGaps: true };
    }));
    var opts = {
      width: Math.max(el.clientWidth, 320), height: spec.height || 240,
      scales: { x: { time: !!spec.time } }, series: series
    };
    return new uPlot(opts, [spec.x].concat((spec.series || []).map(function (s) { return s.values; })), el);
  }

  var kinds = { bar: barChart, line: lineChart };

  function initCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.chartReady) return;
      var spec = JSON.parse(el.dataset.chart);
      var draw = kinds[spec.kind];
      if (!draw) return;
      el.dataset.chartReady = "1";
      el._plot = draw(el, spec);
    });
  }

  function copyText(button) {
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      button.textContent = "Press Ctrl+C";
    }
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("[data-copy]");
    if (button) copyText(button);
  });

  document.addEventListener("change", function (ev) {
    if (ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-chart-ready]").forEach(function (el) {
      if (el._plot) el._plot.setSize({ width: Math.max(el.clientWidth, 320), height: el._plot.height });
    });
  });

  document.addEventListener("DOMContentLoaded", function () { initCharts(document); });
  document.addEventListener("htmx:after:swap", function () { initCharts(document); });

  window.Plinth = { initCharts: initCharts, charts: kinds };
})();
