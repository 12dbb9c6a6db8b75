// MoTLab's chart helpers, beside Plotly.Blazor's interop (which loads plotly.js itself).
(() => {
  // Every WebGL context the page makes is noted here (a canvas cannot be asked for its context without making one):
  // contexts whose canvas has left the page are lost on purpose, since Chromium keeps only ~16 live ones a page and
  // otherwise frees them only when the garbage collector gets to them.
  const contexts = new Set();
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
    const context = getContext.call(this, type, ...rest);
    if (context && String(type).includes('webgl')) contexts.add(context);
    return context;
  };
  function loseDetachedContexts() {
    for (const gl of contexts)
      if (!gl.canvas.isConnected) { contexts.delete(gl); gl.getExtension('WEBGL_lose_context')?.loseContext(); }
  }

  // Plotly draws asynchronously, and a graph purged mid-draw throws from the draw's last step. Each drawing call is
  // noted per graph so that a release waits for it. plotly.js is wrapped as it is assigned to window.Plotly.
  const drawing = new WeakMap();
  const graphs = new Map();            // data-motlab-chart key → graph element, still held once the page removed it
  // Plotly's responsive mode follows the window only: a graph drawn while hidden (a tab not shown yet) keeps Plotly's
  // default width, and one whose column narrows keeps its old one. Every graph is watched instead, and redrawn at its
  // box's width whenever that differs from the width it was drawn at.
  const resized = new ResizeObserver(entries => {
    for (const { target, contentRect } of entries) {
      const drawnAt = target._fullLayout?.width;
      if (plotly && contentRect.width > 0 && drawnAt && Math.abs(contentRect.width - drawnAt) > 1)
        (drawing.get(target) || Promise.resolve()).then(() => target.isConnected && plotly.Plots.resize(target));
    }
  });
  const drawingCalls = ['newPlot', 'react', 'redraw', 'extendTraces', 'prependTraces', 'relayout', 'restyle', 'update', 'addTraces', 'deleteTraces'];
  // plotly.js's exports are getters, so its functions cannot be replaced in place: window.Plotly becomes an object that
  // inherits everything from plotly.js and holds the wrapped drawing calls of its own.
  let plotly;
  Object.defineProperty(window, 'Plotly', {
    configurable: true,
    get: () => plotly,
    set(value) {
      if (!value || typeof value !== 'object') { plotly = value; return; }
      plotly = Object.create(value);
      for (const name of drawingCalls) {
        const call = value[name];
        if (typeof call !== 'function') continue;
        Object.defineProperty(plotly, name, {
          value(graph, ...rest) {
            const result = call.call(value, graph, ...rest);
            const element = typeof graph === 'string' ? document.getElementById(graph) : graph;
            if (!element) return result;
            drawing.set(element, Promise.all([drawing.get(element), result]).catch(() => {}));
            if (element.dataset.motlabChart && graphs.get(element.dataset.motlabChart) !== element) {
              graphs.set(element.dataset.motlabChart, element);
              resized.observe(element);
            }
            return result;
          },
        });
      }
    },
  });

  window.motlabCharts = {
    // Plotly's own image export of a chart, as a download ("png" or "svg").
    download(key, format, filename) {
      const graph = graphs.get(key);
      if (graph && plotly) return plotly.downloadImage(graph, { format, filename, scale: format === 'png' ? 2 : 1 });
    },
    // Dark mode, kept in the browser; unset, the system's preference.
    darkMode() {
      const kept = localStorage.getItem('motlab.dark');
      return kept === null ? matchMedia('(prefers-color-scheme: dark)').matches : kept === '1';
    },
    setDarkMode(dark) { localStorage.setItem('motlab.dark', dark ? '1' : '0'); },
    // Purges a Plotly graph once its drawing is done (which takes its canvases off the page), then loses every WebGL
    // context whose canvas is off the page.
    release(key) {
      const graph = graphs.get(key);
      graphs.delete(key);
      if (!graph) return;
      resized.unobserve(graph);
      (drawing.get(graph) || Promise.resolve()).then(() => {
        if (plotly) plotly.purge(graph);
        loseDetachedContexts();
      });
    },
  };
})();
