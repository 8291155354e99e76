// The dashboard: loads the products once, starts jobs, and polls the jobs
// list while any job is unfinished. Server data is only ever written with
// textContent, so a product name or an error message cannot inject HTML.
"use strict";

const JOBS_URL = "/api/v1/jobs?per_page=20";
const PRODUCTS_URL = "/api/v1/products?per_page=20";
const UNFINISHED = new Set(["PENDING", "STARTED", "PROGRESS"]);
// Poll every second while jobs change, backing off to 5 s while they do not
// (a job waiting for a worker that is not running), and stop once all are done.
const POLL_FIRST_MS = 1000;
const POLL_MAX_MS = 5000;
// A job still queued after this long is probably waiting for a worker.
const WAITING_AFTER_MS = 3000;
const HEALTH_EVERY_MS = 10000;

// When this page first saw each job PENDING. The browser's own clock is used
// rather than the job's created_at, so a client clock set wrong cannot lie.
const pendingSince = new Map();
const poll = { timer: null, delay: POLL_FIRST_MS, ticket: 0, last: "", states: new Map() };
const health = { url: "", checkedAt: 0, workers: null };

document.addEventListener("DOMContentLoaded", () => {
  health.url = document.body.dataset.healthUrl;
  document.getElementById("integrate-form").addEventListener("submit", startIntegration);
  document.getElementById("async-form").addEventListener("submit", startAsyncProcess);
  loadProducts();
  pollJobs();
});

// Fetch url; resolve to the response and its JSON body (null if none). Rejects only
// when the server could not be reached.
async function fetchJSON(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  const body = await response.json().catch(() => null);
  return { response, body };
}

function errorText(response, body) {
  if (body && typeof body.message === "string") {
    return body.message;
  }
  return `The server answered ${response.status} ${response.statusText}.`;
}

function showMessage(id, text, isError = false) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function shortId(id) {
  return id.slice(0, 8);
}

// Products

async function loadProducts() {
  // Loaded once, not polled: every products request also queues a task.
  try {
    const { response, body } = await fetchJSON(PRODUCTS_URL);
    if (!response.ok) {
      showMessage("products-message", errorText(response, body), true);
      return;
    }
    document.getElementById("products").replaceChildren(...body.map(productItem));
    const total = Number(response.headers.get("X-Total-Count") ?? body.length);
    showMessage("products-message", total === 0
      ? "No products yet: `pipenv run flask seed` adds some."
      : `Showing ${body.length} of ${total} products.`);
  } catch (error) {
    showMessage("products-message", `Could not load the products: ${error.message}`, true);
  }
}

function productItem(product) {
  const item = document.createElement("li");
  const name = document.createElement("strong");
  name.textContent = product.name;
  item.append(name);
  if (product.description) {
    item.append(`: ${product.description}`);
  }
  return item;
}

// Starting jobs

function startIntegration(event) {
  event.preventDefault();
  const names = ["f", "a", "b", "c", "d", "size", "seed"];
  submitJob(event.target, "/api/v1/jobs/integrate", names, "integrate-message");
}

function startAsyncProcess(event) {
  event.preventDefault();
  submitJob(event.target, "/async_process/start", ["steps"], "async-message");
}

// Send the form's fields as JSON; show field errors beside their inputs, any
// other failure in the form's status region, and start polling on success.
async function submitJob(form, url, names, messageId) {
  if (form.dataset.busy) {
    return;
  }
  form.dataset.busy = "yes";
  clearFieldErrors(form);
  showMessage(messageId, "Starting…");
  try {
    const { response, body } = await fetchJSON(url, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(formValues(form, names)),
    });
    if (response.ok) {
      const id = body.result_id ?? body.id;
      showMessage(messageId, `Queued job ${shortId(id)}.`);
      restartPolling();
      return;
    }
    showMessage(messageId, errorText(response, body), true);
    if (response.status === 422 && body && body.errors) {
      showFieldErrors(form, body.errors, messageId);
    }
  } catch (error) {
    showMessage(messageId, `Could not reach the server: ${error.message}`, true);
  } finally {
    delete form.dataset.busy;
  }
}

// Read the named fields: f stays text, the others become numbers. Text that is
// not a number is sent as it is, so that the server's message explains it.
function formValues(form, names) {
  const values = {};
  for (const name of names) {
    const text = form.elements.namedItem(name).value.trim();
    if (name === "f") {
      values[name] = text;
    } else if (text !== "") {
      const number = Number(text);
      values[name] = Number.isFinite(number) ? number : text;
    }
  }
  return values;
}

function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("input")) {
    input.removeAttribute("aria-invalid");
    document.getElementById(input.getAttribute("aria-describedby")).textContent = "";
  }
}

function showFieldErrors(form, errors, messageId) {
  for (const [field, messages] of Object.entries(errors)) {
    const input = form.elements.namedItem(field);
    const text = [].concat(messages).join(" ");
    if (input instanceof HTMLInputElement) {
      input.setAttribute("aria-invalid", "true");
      document.getElementById(input.getAttribute("aria-describedby")).textContent = text;
    } else {
      showMessage(messageId, `${field}: ${text}`, true);
    }
  }
}

// Polling the jobs

function restartPolling() {
  poll.delay = POLL_FIRST_MS;
  schedulePoll(0);
}

function schedulePoll(delay) {
  clearTimeout(poll.timer);
  poll.timer = setTimeout(pollJobs, delay);
}

async function pollJobs() {
  // A newer poll (the user started a job meanwhile) supersedes this one.
  const ticket = ++poll.ticket;
  let jobs;
  try {
    const { response, body } = await fetchJSON(JOBS_URL);
    if (!response.ok) {
      throw new Error(errorText(response, body));
    }
    jobs = body;
  } catch (error) {
    if (ticket === poll.ticket) {
      const text = `Could not load the jobs (${error.message}); trying again.`;
      showMessage("jobs-message", text, true);
      backOffAndPoll();
    }
    return;
  }
  if (ticket !== poll.ticket) {
    return;
  }
  const seen = JSON.stringify(jobs);
  const changed = seen !== poll.last;
  poll.last = seen;
  if (!jobs.some((job) => UNFINISHED.has(job.state))) {
    renderJobs(jobs);
    return;
  }
  await checkWorkers(jobs);
  if (ticket !== poll.ticket) {
    return;
  }
  renderJobs(jobs);
  if (changed) {
    poll.delay = POLL_FIRST_MS;
    schedulePoll(poll.delay);
  } else {
    backOffAndPoll();
  }
}

function backOffAndPoll() {
  schedulePoll(poll.delay);
  poll.delay = Math.min(poll.delay * 2, POLL_MAX_MS);
}

// Ask /health, now and then, whether any worker answers, once a job has waited long.
async function checkWorkers(jobs) {
  if (!health.url || Date.now() - health.checkedAt < HEALTH_EVERY_MS || !jobs.some(isWaiting)) {
    return;
  }
  health.checkedAt = Date.now();
  try {
    const { body } = await fetchJSON(health.url);
    health.workers = body?.checks?.workers ?? null;
  } catch {
    health.workers = null;
  }
}

function isWaiting(job) {
  if (job.state !== "PENDING") {
    pendingSince.delete(job.id);
    return false;
  }
  if (!pendingSince.has(job.id)) {
    pendingSince.set(job.id, Date.now());
  }
  return Date.now() - pendingSince.get(job.id) >= WAITING_AFTER_MS;
}

// Rendering the jobs

// Redraw the table, and announce the jobs that finished since the last poll.
function renderJobs(jobs) {
  const ended = jobs.filter(
    (job) => UNFINISHED.has(poll.states.get(job.id)) && !UNFINISHED.has(job.state),
  );
  poll.states = new Map(jobs.map((job) => [job.id, job.state]));
  if (ended.length > 0) {
    const news = ended.map((job) => `${job.name} ${shortId(job.id)}: ${job.state}.`);
    showMessage("jobs-message", news.join(" "));
  } else if (jobs.length === 0) {
    showMessage("jobs-message", "No jobs yet: start one above.");
  } else if (document.getElementById("jobs-message").classList.contains("error")) {
    showMessage("jobs-message", "");
  }
  document.getElementById("jobs").replaceChildren(...jobs.map(jobRow));
}

function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.dataset.state = job.state;
  row.append(
    cell(`${job.name} ${shortId(job.id)}`),
    stateCell(job),
    progressCell(job),
    resultCell(job),
    cell(new Date(job.created_at).toLocaleTimeString()),
  );
  return row;
}

function cell(text, className = "") {
  const element = document.createElement("td");
  element.textContent = text;
  if (className) {
    element.className = className;
  }
  return element;
}

function stateCell(job) {
  const element = cell(job.state, "state");
  const hint = pendingHint(job);
  if (hint) {
    const note = document.createElement("span");
    note.className = "hint";
    note.textContent = hint;
    element.append(note);
  }
  return element;
}

function pendingHint(job) {
  if (job.state !== "PENDING") {
    return "";
  }
  if (!isWaiting(job)) {
    return "Queued";
  }
  return health.workers === 0 ? "Waiting for a worker: none is running" : "Waiting for a worker";
}

function progressCell(job) {
  const element = cell("", "progress");
  const bar = document.createElement("progress");
  bar.setAttribute("aria-label", `Progress of ${job.name} ${shortId(job.id)}`);
  const label = document.createElement("span");
  const progress = progressOf(job);
  if (progress) {
    bar.max = progress.total;
    bar.value = progress.current;
    label.textContent = `${Math.floor((100 * progress.current) / progress.total)} %`;
  }
  // Without a value, the bar is indeterminate: running, with no way to tell how far.
  element.append(bar, label);
  return element;
}

function progressOf(job) {
  if (job.progress && job.progress.total > 0) {
    return job.progress;
  }
  if (UNFINISHED.has(job.state)) {
    return null;
  }
  return { current: job.state === "SUCCESS" ? 1 : 0, total: 1 };
}

function resultCell(job) {
  if (job.error) {
    return cell(`${job.error.type}: ${job.error.message}`, "error");
  }
  if (job.state !== "SUCCESS") {
    return cell("");
  }
  return cell(formatResult(job.result));
}

function formatResult(result) {
  if (result !== null && typeof result === "object") {
    return Object.entries(result).map(([key, value]) => `${key} ${value}`).join(", ");
  }
  return String(result);
}
