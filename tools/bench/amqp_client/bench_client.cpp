// A proton C++ client for tools/bench/amqp_bench.py: the Python clients spend about
// 120 µs of CPU per message each, so they cannot drive 10,000 msg/s on two cores; this
// one spends a few µs and leaves the CPU to what the benchmark measures.
//
//   bench_client send    URL ADDRESS COUNT SIZE IN_FLIGHT   (prints one JSON line)
//   bench_client receive URL ADDRESS COUNT                  (connects to URL)
//   bench_client listen  HOST:PORT COUNT                    (accepts a sender's link)
//
// The sender keeps IN_FLIGHT messages unsettled; latency is send to the receiver's
// accept coming back. The receiver accepts every message (auto-accept) and prints
// "ready" once its link is open.
#include <proton/connection.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/listen_handler.hpp>
#include <proton/listener.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender.hpp>
#include <proton/tracker.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

using steady = std::chrono::steady_clock;

namespace {

double seconds_since(steady::time_point start) {
    return std::chrono::duration<double>(steady::now() - start).count();
}

class Sender : public proton::messaging_handler {
  public:
    Sender(std::string url, std::string address, long count, size_t size, long in_flight)
        : url_(std::move(url)), address_(std::move(address)), count_(count),
          in_flight_(in_flight) {
        message_.to(address_);
        message_.body(proton::binary(std::string(size, 'x')));
        latencies_.reserve(count);
    }

    void on_container_start(proton::container& c) override {
        c.open_sender(url_ + "/" + address_);
    }

    void on_sendable(proton::sender& s) override {
        if (sent_ == 0) started_ = steady::now();
        while (s.credit() > 0 && sent_ < count_ && sent_ - settled_ < in_flight_) {
            ++sent_;
            uint64_t tag = static_cast<uint64_t>(sent_);
            proton::binary key(reinterpret_cast<const char*>(&tag),
                               reinterpret_cast<const char*>(&tag) + sizeof tag);
            s.send(message_, key);
            at_[tag] = steady::now();
        }
    }

    void on_tracker_settle(proton::tracker& t) override {
        proton::binary key = t.tag();
        uint64_t tag = 0;
        std::memcpy(&tag, key.data(), std::min(key.size(), sizeof tag));
        auto found = at_.find(tag);
        if (found != at_.end()) {
            latencies_.push_back(seconds_since(found->second));
            at_.erase(found);
        }
        if (t.state() == proton::transfer::ACCEPTED) ++accepted_;
        ++settled_;
        if (settled_ >= count_) {
            finished_ = seconds_since(started_);
            t.connection().close();
        } else {
            proton::sender s = t.sender();
            on_sendable(s);
        }
    }

    void report() {
        std::sort(latencies_.begin(), latencies_.end());
        double p50 = latencies_.empty() ? 0 : latencies_[latencies_.size() / 2];
        double p99 = latencies_.empty() ? 0 : latencies_[latencies_.size() * 99 / 100];
        std::printf(
            "{\"messages\": %ld, \"accepted\": %ld, \"seconds\": %.3f, \"msgs_per_s\": %.1f, "
            "\"p50_ms\": %.2f, \"p99_ms\": %.2f}\n",
            count_, accepted_, finished_, finished_ > 0 ? count_ / finished_ : 0.0, p50 * 1000,
            p99 * 1000);
    }

  private:
    std::string url_, address_;
    long count_, in_flight_;
    long sent_ = 0, settled_ = 0, accepted_ = 0;
    double finished_ = 0;
    proton::message message_;
    steady::time_point started_;
    std::unordered_map<uint64_t, steady::time_point> at_;
    std::vector<double> latencies_;
};

class Receiver : public proton::messaging_handler {
  public:
    Receiver(std::string url, std::string address, long count)
        : url_(std::move(url)), address_(std::move(address)), count_(count) {}

    void on_container_start(proton::container& c) override {
        if (address_.empty()) {
            listener_ = c.listen(url_);
            std::printf("ready\n");
            std::fflush(stdout);
        } else {
            c.open_receiver(url_ + "/" + address_,
                            proton::receiver_options().credit_window(300));
        }
    }

    void on_receiver_open(proton::receiver& r) override {
        if (!address_.empty()) {
            std::printf("ready\n");
            std::fflush(stdout);
        } else {
            r.open(proton::receiver_options().credit_window(300));
        }
    }

    void on_message(proton::delivery& d, proton::message&) override {
        if (++received_ >= count_) {
            d.connection().close();
            if (address_.empty()) listener_.stop();
        }
    }

  private:
    std::string url_, address_;
    long count_;
    long received_ = 0;
    proton::listener listener_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 7 && std::strcmp(argv[1], "send") == 0) {
        Sender sender(argv[2], argv[3], std::atol(argv[4]), std::strtoul(argv[5], nullptr, 10),
                      std::atol(argv[6]));
        proton::container(sender).run();
        sender.report();
        return 0;
    }
    if (argc >= 5 && std::strcmp(argv[1], "receive") == 0) {
        Receiver receiver(argv[2], argv[3], std::atol(argv[4]));
        proton::container(receiver).run();
        return 0;
    }
    if (argc >= 4 && std::strcmp(argv[1], "listen") == 0) {
        Receiver receiver(argv[2], "", std::atol(argv[3]));
        proton::container(receiver).run();
        return 0;
    }
    std::fprintf(stderr, "usage: bench_client send URL ADDRESS COUNT SIZE IN_FLIGHT | "
                         "receive URL ADDRESS COUNT | listen HOST:PORT COUNT\n");
    return 2;
}
